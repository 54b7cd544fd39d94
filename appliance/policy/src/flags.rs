//! Feature flags: on/off, an allow-list, and a percentage rollout that is stable per user (the
//! same user stays in or out as long as the percentage does not shrink past them).

use daarion_settings::Setting;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub enabled: bool,
    /// 0 to 100: the share of users (by a stable hash) who get the flag.
    #[serde(default = "all")]
    pub rollout_percent: u8,
    /// Users who get the flag whatever the percentage (while it is enabled).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Flags are config documents too: `flags.<name>`.
impl Setting for Flag {
    const PREFIX: &'static str = "flags";
}

fn all() -> u8 {
    100
}

impl Flag {
    pub fn validate(&self) -> Result<(), String> {
        if self.rollout_percent > 100 {
            return Err(format!(
                "rollout_percent must be 0 to 100, not {}",
                self.rollout_percent
            ));
        }
        Ok(())
    }
}

/// The user's bucket for a flag, 0..100: the first 8 bytes of SHA-256("flag:user").
pub fn bucket(flag_name: &str, user_id: &str) -> u8 {
    let digest = Sha256::digest(format!("{flag_name}:{user_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

pub fn flag_enabled(flag_name: &str, flag: &Flag, user_id: &str) -> bool {
    flag.enabled
        && (flag.allow.iter().any(|u| u == user_id)
            || bucket(flag_name, user_id) < flag.rollout_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(percent: u8) -> Flag {
        Flag {
            enabled: true,
            rollout_percent: percent,
            allow: vec![],
        }
    }

    #[test]
    fn rollout_is_stable_monotonic_and_close_to_the_percentage() {
        let users: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
        let on = |p: u8| -> Vec<bool> {
            users
                .iter()
                .map(|u| flag_enabled("voice_replies", &flag(p), u))
                .collect()
        };
        let at30 = on(30);
        assert_eq!(at30, on(30), "same answer every time");
        let share = at30.iter().filter(|b| **b).count();
        assert!(
            (500..=700).contains(&share),
            "30% of 2000 ≈ 600, got {share}"
        );
        let at50 = on(50);
        assert!(
            at30.iter().zip(&at50).all(|(a, b)| !*a || *b),
            "raising the percentage never drops a user"
        );
        assert!(on(0).iter().all(|b| !b));
        assert!(on(100).iter().all(|b| *b));
    }

    #[test]
    fn allow_list_and_off_switch() {
        let mut f = flag(0);
        f.allow = vec!["vip".into()];
        assert!(flag_enabled("x", &f, "vip"));
        assert!(!flag_enabled("x", &f, "other"));
        f.enabled = false;
        assert!(!flag_enabled("x", &f, "vip"));
    }

    #[test]
    fn buckets_differ_per_flag() {
        let same = (0..200)
            .filter(|i| bucket("a", &format!("u{i}")) == bucket("b", &format!("u{i}")))
            .count();
        assert!(same < 20, "flags must not share cohorts: {same}");
    }

    #[test]
    fn percentage_over_100_is_invalid() {
        assert!(flag(101).validate().is_err());
        assert!(flag(100).validate().is_ok());
    }
}
