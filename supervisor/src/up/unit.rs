//! One supervised child: spawn, wait for ready, watch, restart, stop. Each unit runs as its own
//! task and is driven by commands from the admin API.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daarion_config::SupervisorConfig;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use daarion_bus::events::OpsHealth;

use super::health::HealthEvents;
use super::metrics::{RESTARTS, START_SECONDS, UP};
use super::plan::UnitName;
use super::policy::{Decision, RestartPolicy};
use super::probe::Probe;
use super::ring::LogRing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for its dependencies.
    Pending,
    Starting,
    Ready,
    /// Exited; restarting after a delay.
    Backoff,
    Stopping,
    /// Stopped by an operator or at shutdown.
    Stopped,
    /// Crashed too often; left stopped until an operator starts it.
    Failed,
    /// Cannot run on this box (monitoring without its binaries); `detail` says why.
    Off,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
            State::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitStatus {
    pub name: String,
    pub state: State,
    pub pid: Option<u32>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Why the unit is failed or not ready, in words.
    pub detail: Option<String>,
}

/// What an operator can ask of a unit through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitCommand {
    Start,
    Stop,
    Restart,
}

/// What the admin API and the orchestrator hold of a unit.
#[derive(Clone)]
pub struct UnitHandle {
    pub name: UnitName,
    pub status: Arc<Mutex<UnitStatus>>,
    pub ring: Arc<LogRing>,
    pub commands: mpsc::Sender<UnitCommand>,
}

impl UnitHandle {
    pub fn snapshot(&self) -> UnitStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// How to start the unit's process.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The `daarion` binary: it starts every child through `daarion child-exec`.
    pub exe: PathBuf,
    pub program: PathBuf,
    pub args: Vec<String>,
}

pub struct Unit {
    name: UnitName,
    spawn: Spawn,
    probe: Probe,
    config: SupervisorConfig,
    policy: RestartPolicy,
    status: Arc<Mutex<UnitStatus>>,
    ring: Arc<LogRing>,
    commands: mpsc::Receiver<UnitCommand>,
    shutdown: CancellationToken,
    events: HealthEvents,
}

enum Outcome {
    Shutdown,
    OperatorStop,
    OperatorRestart,
    Failed(String),
}

impl Unit {
    pub fn new(
        name: UnitName,
        spawn: Spawn,
        probe: Probe,
        config: &SupervisorConfig,
        shutdown: CancellationToken,
        events: HealthEvents,
    ) -> (Unit, UnitHandle) {
        let status = new_status(name, State::Pending, None);
        let ring = Arc::new(LogRing::new(config.log_ring_lines));
        let (tx, rx) = mpsc::channel(8);
        // Present from the start at 0, so that `increase()` sees the first restart.
        for cause in ["failure", "operator"] {
            RESTARTS.with_label_values(&[name.as_str(), cause]);
        }
        UP.with_label_values(&[name.as_str()]).set(0);
        let unit = Unit {
            name,
            spawn,
            probe,
            config: config.clone(),
            policy: RestartPolicy::new(config),
            status: status.clone(),
            ring: ring.clone(),
            commands: rx,
            shutdown,
            events,
        };
        let handle = UnitHandle {
            name,
            status,
            ring,
            commands: tx,
        };
        (unit, handle)
    }

    fn update(&self, f: impl FnOnce(&mut UnitStatus)) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let previous = status.state;
        f(&mut status);
        UP.with_label_values(&[self.name.as_str()])
            .set(i64::from(status.state == State::Ready));
        if status.state != previous {
            self.events.send(health_event(&status, previous));
        }
    }

    /// Runs until the unit's shutdown token fires; the child is stopped before this returns.
    pub async fn run(mut self) {
        let mut want_running = true;
        loop {
            if self.shutdown.is_cancelled() {
                self.update(|s| s.state = State::Stopped);
                return;
            }
            if !want_running {
                tokio::select! {
                    () = self.shutdown.cancelled() => continue,
                    command = self.commands.recv() => match command {
                        Some(UnitCommand::Start | UnitCommand::Restart) => {
                            self.policy.reset();
                            want_running = true;
                        }
                        Some(UnitCommand::Stop) => {}
                        None => return,
                    },
                }
                continue;
            }

            let outcome = match self.start() {
                Ok(mut child) => self.supervise(&mut child).await,
                Err(e) => Outcome::Failed(format!("cannot start: {e}")),
            };
            match outcome {
                Outcome::Shutdown => {
                    self.update(|s| s.state = State::Stopped);
                    return;
                }
                Outcome::OperatorStop => {
                    want_running = false;
                    self.update(|s| s.state = State::Stopped);
                }
                Outcome::OperatorRestart => {
                    RESTARTS
                        .with_label_values(&[self.name.as_str(), "operator"])
                        .inc();
                    self.update(|s| s.restarts += 1);
                }
                Outcome::Failed(reason) => {
                    RESTARTS
                        .with_label_values(&[self.name.as_str(), "failure"])
                        .inc();
                    match self.policy.crashed(Instant::now()) {
                        Decision::RestartIn(delay) => {
                            tracing::warn!(unit = %self.name, %reason, restart_in_ms = delay.as_millis() as u64, "unit exited; restarting");
                            self.update(|s| {
                                s.state = State::Backoff;
                                s.restarts += 1;
                                s.detail = Some(reason);
                            });
                            want_running = self.backoff(delay).await;
                        }
                        Decision::GiveUp { crashes, window } => {
                            let detail = format!(
                                "failed {crashes} times within {window:?}, last: {reason}; start it again from the admin API once fixed"
                            );
                            tracing::error!(unit = %self.name, %detail, "unit marked failed");
                            self.update(|s| {
                                s.state = State::Failed;
                                s.detail = Some(detail);
                            });
                            want_running = false;
                        }
                    }
                }
            }
        }
    }

    /// Sleeps out a restart delay; a Stop during it cancels the restart, a Start skips the wait.
    async fn backoff(&mut self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.shutdown.cancelled() => true,
            command = self.commands.recv() => match command {
                Some(UnitCommand::Stop) => {
                    self.update(|s| s.state = State::Stopped);
                    false
                }
                Some(UnitCommand::Start | UnitCommand::Restart) | None => true,
            },
        }
    }

    fn start(&mut self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.spawn.exe);
        command
            .arg("child-exec")
            .arg("--parent")
            .arg(std::process::id().to_string())
            .arg("--")
            .arg(&self.spawn.program)
            .args(&self.spawn.args)
            // systemd talks to the supervisor only (NotifyAccess=main).
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: stopping the unit signals everything it started.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child.id();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(self.name, "stdout", out, self.ring.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(self.name, "stderr", err, self.ring.clone()));
        }
        tracing::info!(unit = %self.name, pid, "started");
        self.update(|s| {
            s.state = State::Starting;
            s.pid = pid;
            s.started_at = Some(OffsetDateTime::now_utc());
        });
        Ok(child)
    }

    /// Watches a started child: first until `/ready` answers (polled every 100 ms, bounded by
    /// `ready_timeout`), then its `/health` every `health_interval`. Returns why it stopped.
    async fn supervise(&mut self, child: &mut Child) -> Outcome {
        let started = Instant::now();
        let mut ready = false;
        let mut misses = 0;
        loop {
            let wait = if ready {
                self.config.health_interval()
            } else {
                Duration::from_millis(100)
            };
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.stop(child).await;
                    return Outcome::Shutdown;
                }
                status = child.wait() => return self.exited(status),
                command = self.commands.recv() => {
                    if let Some(outcome) = self.on_command(command, child).await {
                        return outcome;
                    }
                }
                () = tokio::time::sleep(wait) => {
                    let failure = if ready {
                        self.check_health(&mut misses).await
                    } else {
                        match self.probe.ready().await {
                            Ok(()) => {
                                ready = true;
                                self.became_ready(started.elapsed());
                                None
                            }
                            Err(reason) if started.elapsed() > self.config.ready_timeout() => {
                                Some(format!(
                                    "not ready within {:?}: {reason}",
                                    self.config.ready_timeout()
                                ))
                            }
                            Err(_) => None,
                        }
                    };
                    if let Some(reason) = failure {
                        self.stop(child).await;
                        return Outcome::Failed(reason);
                    }
                }
            }
        }
    }

    fn became_ready(&mut self, took: Duration) {
        START_SECONDS
            .with_label_values(&[self.name.as_str()])
            .observe(took.as_secs_f64());
        tracing::info!(unit = %self.name, ms = took.as_millis() as u64, "ready");
        self.policy.became_ready();
        self.update(|s| {
            s.state = State::Ready;
            s.detail = None;
        });
    }

    /// One liveness probe; `Some(reason)` once `health_failures` probes in a row failed.
    async fn check_health(&mut self, misses: &mut u32) -> Option<String> {
        match self.probe.alive().await {
            Ok(()) => {
                *misses = 0;
                None
            }
            Err(reason) => {
                *misses += 1;
                tracing::warn!(unit = %self.name, misses = *misses, %reason, "health check failed");
                (*misses >= self.config.health_failures)
                    .then(|| format!("/health failed {misses} times in a row: {reason}"))
            }
        }
    }

    async fn on_command(
        &mut self,
        command: Option<UnitCommand>,
        child: &mut Child,
    ) -> Option<Outcome> {
        match command {
            Some(UnitCommand::Stop) => {
                self.stop(child).await;
                Some(Outcome::OperatorStop)
            }
            Some(UnitCommand::Restart) => {
                self.stop(child).await;
                Some(Outcome::OperatorRestart)
            }
            Some(UnitCommand::Start) | None => None,
        }
    }

    fn exited(&mut self, status: std::io::Result<ExitStatus>) -> Outcome {
        let reason = match status {
            Ok(status) => describe(status),
            Err(e) => format!("wait failed: {e}"),
        };
        // The group may hold processes the unit started; none may outlive it.
        kill_group(child_pgid(&self.status), Signal::SIGKILL);
        self.update(|s| {
            s.pid = None;
            s.last_exit = Some(reason.clone());
        });
        Outcome::Failed(reason)
    }

    /// SIGTERM to the unit's process group, SIGKILL after the grace period.
    async fn stop(&mut self, child: &mut Child) {
        self.update(|s| s.state = State::Stopping);
        let pgid = child.id();
        kill_group(pgid, Signal::SIGTERM);
        let grace = self.config.stop_grace();
        let reason = match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(status)) => describe(status),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                tracing::warn!(unit = %self.name, ?grace, "did not stop in time; killing");
                kill_group(pgid, Signal::SIGKILL);
                let _ = child.wait().await;
                format!("killed after the {grace:?} grace period")
            }
        };
        kill_group(pgid, Signal::SIGKILL);
        tracing::info!(unit = %self.name, %reason, "stopped");
        self.update(|s| {
            s.pid = None;
            s.last_exit = Some(reason);
        });
    }
}

fn new_status(name: UnitName, state: State, detail: Option<String>) -> Arc<Mutex<UnitStatus>> {
    Arc::new(Mutex::new(UnitStatus {
        name: name.to_string(),
        state,
        pid: None,
        started_at: None,
        restarts: 0,
        last_exit: None,
        detail,
    }))
}

/// A unit that cannot run on this box: listed with why, never started. The returned task
/// answers its commands (by ignoring them) until shutdown.
pub fn off(
    name: UnitName,
    reason: String,
    config: &SupervisorConfig,
    shutdown: CancellationToken,
) -> (impl Future<Output = ()> + Send + 'static, UnitHandle) {
    let (tx, mut rx) = mpsc::channel(8);
    let handle = UnitHandle {
        name,
        status: new_status(name, State::Off, Some(reason)),
        ring: Arc::new(LogRing::new(config.log_ring_lines)),
        commands: tx,
    };
    let task = async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                command = rx.recv() => if command.is_none() { return },
            }
        }
    };
    (task, handle)
}

/// The `ops.health` event for a change from `previous` to the unit's current state. The cause
/// is what the supervisor knows of why: the failure that led to a restart, the last exit.
fn health_event(status: &UnitStatus, previous: State) -> OpsHealth {
    let cause = match status.state {
        State::Ready | State::Starting | State::Pending => status.detail.clone(),
        State::Backoff | State::Failed | State::Stopped | State::Stopping | State::Off => {
            status.detail.clone().or_else(|| status.last_exit.clone())
        }
    };
    OpsHealth {
        unit: status.name.clone(),
        state: status.state.as_str().to_owned(),
        previous: previous.as_str().to_owned(),
        cause: cause.unwrap_or_default(),
        restarts: status.restarts,
    }
}

fn child_pgid(status: &Mutex<UnitStatus>) -> Option<u32> {
    status.lock().unwrap_or_else(|e| e.into_inner()).pid
}

fn kill_group(pgid: Option<u32>, signal: Signal) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // ESRCH (already gone) is the expected case after a clean exit.
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => "exited".to_owned(),
    }
}

/// Copies a child's output line by line into the supervisor's log and the unit's ring.
async fn pump(
    name: UnitName,
    stream: &'static str,
    reader: impl AsyncRead + Unpin,
    ring: Arc<LogRing>,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "daarion::child", unit = %name, stream, "{line}");
        ring.push(stream, line);
    }
}
