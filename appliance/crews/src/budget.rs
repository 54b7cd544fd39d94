//! A run's limits: the crew's (the appliance's `[crews.budget]` where the crew sets none),
//! tightened by what the request asks for. 0 in the configuration means no limit of that kind.

use daarion_crews_client::Budget;

/// `[crews.budget]` as read at start.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub max_tokens: u64,
    pub max_cost: f64,
    pub max_gpu_seconds: f64,
    pub max_steps: u32,
    pub max_wall_secs: u64,
}

impl Defaults {
    pub fn from_config(config: &daarion_config::Config) -> Defaults {
        let b = &config.crews.budget;
        Defaults {
            max_tokens: b.max_tokens,
            max_cost: b.max_cost,
            max_gpu_seconds: b.max_gpu_seconds,
            max_steps: b.max_steps,
            max_wall_secs: b.max_wall_secs,
        }
    }
}

fn tighter<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b < a { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn nonzero<T: PartialOrd + Default + Copy>(v: T) -> Option<T> {
    (v > T::default()).then_some(v)
}

pub fn effective(crew: &Budget, request: Option<&Budget>, defaults: &Defaults) -> Budget {
    let base = Budget {
        max_tokens: crew.max_tokens.or(nonzero(defaults.max_tokens)),
        max_cost: crew.max_cost.or(nonzero(defaults.max_cost)),
        max_gpu_seconds: crew.max_gpu_seconds.or(nonzero(defaults.max_gpu_seconds)),
        max_steps: crew.max_steps.or(nonzero(defaults.max_steps)),
        max_wall_secs: crew.max_wall_secs.or(nonzero(defaults.max_wall_secs)),
    };
    let Some(r) = request else { return base };
    Budget {
        max_tokens: tighter(base.max_tokens, r.max_tokens),
        max_cost: tighter(base.max_cost, r.max_cost),
        max_gpu_seconds: tighter(base.max_gpu_seconds, r.max_gpu_seconds),
        max_steps: tighter(base.max_steps, r.max_steps),
        max_wall_secs: tighter(base.max_wall_secs, r.max_wall_secs),
    }
}

/// A resumed run's limits: those the resume names replace the run's (raising them is the point).
pub fn raised(run: &Budget, raise: &Budget) -> Budget {
    Budget {
        max_tokens: raise.max_tokens.or(run.max_tokens),
        max_cost: raise.max_cost.or(run.max_cost),
        max_gpu_seconds: raise.max_gpu_seconds.or(run.max_gpu_seconds),
        max_steps: raise.max_steps.or(run.max_steps),
        max_wall_secs: raise.max_wall_secs.or(run.max_wall_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tightens_crew_which_overrides_defaults() {
        let defaults = Defaults {
            max_tokens: 1000,
            max_cost: 0.0,
            max_gpu_seconds: 0.0,
            max_steps: 60,
            max_wall_secs: 3600,
        };
        let crew = Budget {
            max_steps: Some(100),
            ..Budget::default()
        };
        let request = Budget {
            max_tokens: Some(5000),
            max_steps: Some(10),
            max_cost: Some(0.5),
            ..Budget::default()
        };
        let b = effective(&crew, Some(&request), &defaults);
        assert_eq!(
            b.max_tokens,
            Some(1000),
            "a request cannot raise the default"
        );
        assert_eq!(b.max_steps, Some(10), "a request tightens the crew's");
        assert_eq!(b.max_cost, Some(0.5), "no limit before; the request's now");
        assert_eq!(b.max_gpu_seconds, None, "0 in the configuration: no limit");
        assert_eq!(b.max_wall_secs, Some(3600));
        assert_eq!(effective(&crew, None, &defaults).max_steps, Some(100));
        let r = raised(
            &b,
            &Budget {
                max_steps: Some(50),
                ..Budget::default()
            },
        );
        assert_eq!((r.max_steps, r.max_tokens), (Some(50), Some(1000)));
    }
}
