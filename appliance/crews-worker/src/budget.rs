//! A run's limits, checked before every model or tool call: a call that would start past a
//! limit is not made, and the run stops with that limit's code and a sentence for its user.

use daarion_crews_client::{Budget, RunUsage, Stop, StopCode};

/// The first limit `usage` (after `elapsed_secs` of wall time) has reached. A limit that is
/// absent or 0 is no limit.
pub fn exceeded(budget: &Budget, usage: &RunUsage, elapsed_secs: u64) -> Option<Stop> {
    let stop = |code, detail: String| Some(Stop { code, detail });
    let tokens = usage.prompt_tokens + usage.completion_tokens;
    if let Some(max) = budget.max_tokens.filter(|m| *m > 0)
        && tokens >= max
    {
        return stop(
            StopCode::Tokens,
            format!(
                "The run used {tokens} tokens, its limit of {max}; it stopped before the next step."
            ),
        );
    }
    if let Some(max) = budget.max_cost.filter(|m| *m > 0.0)
        && usage.cost >= max
    {
        return stop(
            StopCode::Cost,
            format!(
                "The run cost {:.4}, its limit of {max:.4}; it stopped before the next step.",
                usage.cost
            ),
        );
    }
    if let Some(max) = budget.max_gpu_seconds.filter(|m| *m > 0.0)
        && usage.gpu_seconds >= max
    {
        return stop(
            StopCode::GpuSeconds,
            format!(
                "The run used {:.1} GPU-seconds, its limit of {max:.1}; it stopped before the next step.",
                usage.gpu_seconds
            ),
        );
    }
    if let Some(max) = budget.max_steps.filter(|m| *m > 0)
        && usage.steps >= max
    {
        return stop(
            StopCode::Steps,
            format!(
                "The run made {} model and tool calls, its limit of {max}; it stopped there.",
                usage.steps
            ),
        );
    }
    if let Some(max) = budget.max_wall_secs.filter(|m| *m > 0)
        && elapsed_secs >= max
    {
        return stop(
            StopCode::WallTime,
            format!(
                "The run has been going for {elapsed_secs} s, its limit of {max} s; it stopped there."
            ),
        );
    }
    None
}

/// Usage as the journal adds it up.
pub fn add(total: &mut RunUsage, step: &RunUsage) {
    total.prompt_tokens += step.prompt_tokens;
    total.completion_tokens += step.completion_tokens;
    total.cost += step.cost;
    total.gpu_seconds += step.gpu_seconds;
    total.steps += step.steps;
}
