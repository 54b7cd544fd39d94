//! The crew's tasks: which wait for which, what each sees, and a task from its first attempt
//! to its accepted output (checks retried, the user's feedback applied).

use daarion_crews_client::{CrewTask, StepKind, StopCode};
use daarion_router_client::StepMessage;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};

use super::agent::{Actor, Delegation};
use super::{Executor, Halt, Owner, human_key, stop};
use crate::{react, schema};

/// Which earlier tasks a task waits for, and whose outputs it sees.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Edges {
    pub wait: Vec<usize>,
    pub sees: Vec<usize>,
}

/// `parallel`: tasks with `async_execution` start when reached and run beside later tasks
/// until one needs them; otherwise every task waits for all earlier ones.
pub(crate) fn edges(tasks: &[CrewTask], parallel: bool) -> Result<Vec<Edges>, String> {
    let mut all = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        let mut context = Vec::new();
        for name in &task.context {
            match tasks[..i].iter().position(|t| &t.key == name) {
                Some(j) => context.push(j),
                None => {
                    return Err(format!(
                        "task {} names `{name}` as context, which is not an earlier task",
                        task.key
                    ));
                }
            }
        }
        let earlier_sync: Vec<usize> = (0..i)
            .filter(|&j| !parallel || !tasks[j].async_execution)
            .collect();
        let sees = if !task.context.is_empty() {
            context.clone()
        } else if task.async_execution && parallel {
            earlier_sync.clone()
        } else {
            (0..i).collect()
        };
        let mut wait: Vec<usize> = if parallel {
            earlier_sync
                .into_iter()
                .chain(sees.iter().copied())
                .collect()
        } else {
            (0..i).collect()
        };
        wait.sort_unstable();
        wait.dedup();
        all.push(Edges { wait, sees });
    }
    Ok(all)
}

impl Executor {
    /// Runs every task as its edges allow; the run's result is the last task's output.
    pub(crate) async fn tasks(&self, parallel: bool) -> Result<String, Halt> {
        let tasks = &self.spec.tasks;
        if tasks.is_empty() {
            return Err(stop(StopCode::Invalid, "The crew has no tasks."));
        }
        for task in tasks {
            if let Some(agent) = &task.agent
                && !self.spec.agents.iter().any(|a| &a.key == agent)
            {
                return Err(stop(
                    StopCode::Invalid,
                    format!(
                        "Task {} names agent `{agent}`, which the crew does not have.",
                        task.key
                    ),
                ));
            }
            if parallel && task.agent.is_none() {
                return Err(stop(
                    StopCode::Invalid,
                    format!(
                        "Task {} names no agent (only a hierarchical crew's manager chooses).",
                        task.key
                    ),
                ));
            }
        }
        let edges = edges(tasks, parallel).map_err(|e| stop(StopCode::Invalid, e))?;
        let mut outputs: Vec<Option<String>> = vec![None; tasks.len()];
        let mut started = vec![false; tasks.len()];
        let mut running: FuturesUnordered<BoxFuture<'_, (usize, Result<String, Halt>)>> =
            FuturesUnordered::new();
        loop {
            for i in 0..tasks.len() {
                if started[i] || !edges[i].wait.iter().all(|&j| outputs[j].is_some()) {
                    continue;
                }
                started[i] = true;
                let seen: Vec<(String, String)> = edges[i]
                    .sees
                    .iter()
                    .map(|&j| (tasks[j].key.clone(), outputs[j].clone().unwrap_or_default()))
                    .collect();
                running.push(Box::pin(async move { (i, self.task(i, seen).await) }));
            }
            match running.next().await {
                Some((i, Ok(output))) => outputs[i] = Some(output),
                Some((_, Err(halt))) => return Err(halt),
                None => break,
            }
        }
        Ok(outputs.pop().flatten().unwrap_or_default())
    }

    /// Task `i` to its accepted output.
    async fn task(&self, i: usize, seen: Vec<(String, String)>) -> Result<String, Halt> {
        let task = &self.spec.tasks[i];
        let actor = self.actor_for(task);
        let owner = Owner {
            task: Some(task.key.clone()),
            agent: Some(actor.key.clone()),
        };
        let context = self.context(i, task, &actor, &owner, seen).await?;
        let mut feedback: Option<(String, String)> = None;
        let mut h = 0;
        loop {
            let output = self
                .attempts(i, task, &actor, &context, feedback.as_ref(), h)
                .await?;
            let first = h == 0;
            let line = if first {
                let done = self.next_task_done();
                format!(
                    "{done}/{} · {}: {}",
                    self.spec.tasks.len(),
                    actor.role,
                    task.key
                )
            } else {
                format!("revised · {}: {}", actor.role, task.key)
            };
            let mut record = self.step_record(
                &format!("t{i}/h{h}/out"),
                StepKind::TaskOutput,
                &owner,
                json!({ "round": h }),
                json!({ "output": output }),
            );
            record.progress = Some(line);
            let stored = self.note(record).await?;
            let output = stored["output"].as_str().unwrap_or(&output).to_owned();
            if !task.human_input || h >= self.settings.max_human_rounds {
                return Ok(output);
            }
            h += 1;
            let Some(answer) = self.lookup(&human_key(&task.key, h)) else {
                return Err(Halt::Wait(format!(
                    "{output}\n\n— {}: reply with changes, or ok",
                    task.key
                )));
            };
            let answer = answer_text(&answer.output);
            if answer.is_empty() || answer.eq_ignore_ascii_case("ok") {
                return Ok(output);
            }
            feedback = Some((output, answer));
        }
    }

    fn actor_for(&self, task: &CrewTask) -> Actor {
        match self.spec.process {
            daarion_crews_client::Process::Hierarchical => Actor::manager(&self.spec),
            daarion_crews_client::Process::Sequential => {
                let agent = task
                    .agent
                    .as_ref()
                    .and_then(|k| self.spec.agents.iter().find(|a| &a.key == k))
                    .or(self.spec.agents.first());
                let mut actor = agent
                    .map(Actor::from_agent)
                    .unwrap_or_else(|| Actor::manager(&self.spec));
                if !task.tools.is_empty() {
                    actor.tools = task.tools.clone();
                }
                actor
            }
        }
    }

    /// What the task is shown of earlier outputs: those it names as context, or all earlier
    /// ones summarised when they would not fit `context_tokens`.
    async fn context(
        &self,
        i: usize,
        task: &CrewTask,
        actor: &Actor,
        owner: &Owner,
        seen: Vec<(String, String)>,
    ) -> Result<String, Halt> {
        let text: String = seen
            .iter()
            .map(|(key, output)| format!("Output of task {key}:\n{output}\n\n"))
            .collect();
        let budget = self.settings.context_tokens as usize;
        if !task.context.is_empty()
            || text.is_empty()
            || budget == 0
            || estimate_tokens(&text) <= budget
        {
            return Ok(text);
        }
        let words = budget * 3 / 4;
        let messages = vec![
            StepMessage::new(
                "system",
                "You condense the work of earlier tasks for the next one. Keep every fact, figure, name and conclusion the next task may need; drop repetition and chatter.",
            ),
            StepMessage::new(
                "user",
                format!("Summarise in at most {words} words:\n\n{text}"),
            ),
        ];
        let request = self.request(actor.llm.clone(), messages, Vec::new());
        let response = self
            .llm(
                &format!("sum/t{i}"),
                StepKind::Summary,
                owner,
                actor.max_rpm,
                request,
            )
            .await?;
        Ok(format!(
            "Summary of the earlier tasks' outputs:\n{}\n\n",
            response.content.trim()
        ))
    }

    /// Attempts of round `h` until the output passes `output_json` and the guardrail, within
    /// the agent's `max_retry_limit`.
    async fn attempts(
        &self,
        i: usize,
        task: &CrewTask,
        actor: &Actor,
        context: &str,
        feedback: Option<&(String, String)>,
        h: u32,
    ) -> Result<String, Halt> {
        let owner = Owner {
            task: Some(task.key.clone()),
            agent: Some(actor.key.clone()),
        };
        let mut rejection: Option<String> = None;
        let mut last_reason = String::new();
        for r in 0..=actor.max_retry_limit {
            let prefix = format!("t{i}/h{h}/r{r}");
            let mut prompt = self.task_prompt(task, context);
            if let Some((previous, answer)) = feedback {
                prompt.push_str(&format!(
                    "\n\nYour previous answer was:\n{previous}\n\nThe user asked for these changes: {answer}\nGive the revised answer."
                ));
            }
            if let Some(reason) = &rejection {
                prompt.push_str(&format!(
                    "\n\nYour previous answer was rejected: {reason}\nFix this in your new answer."
                ));
            }
            let delegation = Delegation::root(actor);
            let output = self
                .answer(
                    actor,
                    &owner,
                    &prompt,
                    &self.fill(&task.expected_output),
                    &prefix,
                    &delegation,
                )
                .await?;
            if let Some(schema_value) = &task.output_json {
                let verdict = match react::first_json(&output) {
                    Some(value) => schema::validate(&value, schema_value).map(|()| value),
                    None => Err("the answer is not JSON".to_owned()),
                };
                let record = self.step_record(
                    &format!("{prefix}/json"),
                    StepKind::Guardrail,
                    &owner,
                    json!({ "check": "output_json" }),
                    match &verdict {
                        Ok(_) => json!({ "pass": true }),
                        Err(reason) => json!({ "pass": false, "reason": reason }),
                    },
                );
                let stored = self.note(record).await?;
                if stored["pass"] != Value::Bool(true) {
                    last_reason = stored["reason"]
                        .as_str()
                        .unwrap_or("invalid JSON")
                        .to_owned();
                    rejection = Some(format!("the JSON does not match the schema: {last_reason}"));
                    continue;
                }
            }
            if let Some(rule) = &task.guardrail {
                let messages = vec![
                    StepMessage::new(
                        "system",
                        "You check a task's output against a rule. Answer exactly PASS, or FAIL: followed by the reason in one sentence.",
                    ),
                    StepMessage::new("user", format!("Rule: {rule}\n\nOutput:\n{output}")),
                ];
                let request = self.request(actor.llm.clone(), messages, Vec::new());
                let verdict = self
                    .llm(
                        &format!("{prefix}/guard"),
                        StepKind::Guardrail,
                        &owner,
                        actor.max_rpm,
                        request,
                    )
                    .await?;
                if let Err(reason) = guardrail_verdict(&verdict.content) {
                    last_reason = reason.clone();
                    rejection = Some(format!("it does not satisfy the rule \"{rule}\": {reason}"));
                    continue;
                }
            }
            return Ok(output);
        }
        Err(stop(
            StopCode::Failed,
            format!(
                "The output of task {} did not pass its checks in {} tries: {last_reason}",
                task.key,
                actor.max_retry_limit + 1
            ),
        ))
    }

    /// `{placeholder}`s filled from the run's inputs (`{task}`: the run's request).
    fn fill(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (name, value) in &self.run.inputs {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text.replace("{task}", &self.run.task)
    }

    fn task_prompt(&self, task: &CrewTask, context: &str) -> String {
        let mut prompt = self.fill(&task.description);
        if !self.run.task.is_empty() && !task.description.contains("{task}") {
            prompt.push_str(&format!(
                "\n\nThe request this crew works on: {}",
                self.run.task
            ));
        }
        if !context.is_empty() {
            prompt.push_str(&format!(
                "\n\nThis is the context you are working with:\n{context}"
            ));
        }
        prompt
    }
}

/// The user's answer as the crews service journals it: a string or `{"answer": …}`.
fn answer_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.trim().to_owned(),
        other => other["answer"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// `PASS`, or the reason after `FAIL:`; anything else fails with the words as the reason.
pub(crate) fn guardrail_verdict(text: &str) -> Result<(), String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    if upper.starts_with("PASS") || (upper.contains("PASS") && !upper.contains("FAIL")) {
        return Ok(());
    }
    let reason = match upper.find("FAIL") {
        Some(at) => t[at + 4..].trim_start_matches([':', ' ', '-']).trim(),
        None => t,
    };
    Err(if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        reason.to_owned()
    })
}

/// Tokens as chars/4: close enough for a budget, and no tokenizer for every model.
pub(crate) fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}
