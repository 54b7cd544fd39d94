//! One agent working on one piece of work: the model loop (native tool calls or ReAct text),
//! its tool calls, and — for a manager or an agent allowed to delegate — handing work to a
//! coworker, with the delegation bounded and loops cut.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use daarion_crews_client::{CrewAgent, CrewSpec, StepKind, StopCode};
use daarion_router_client::StepMessage;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Executor, Halt, Owner, bounded, stop};
use crate::react::{self, Parsed};

pub(crate) const DELEGATE_WORK: &str = "delegate_work";
pub(crate) const ASK_QUESTION: &str = "ask_question";

/// Who works: a crew agent, or the hierarchical crew's manager.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub key: String,
    pub role: String,
    pub goal: String,
    pub backstory: String,
    pub llm: Option<String>,
    pub tools: Vec<String>,
    pub delegates: bool,
    pub max_iter: u32,
    pub max_rpm: Option<u32>,
    pub max_retry_limit: u32,
}

impl Actor {
    pub fn from_agent(agent: &CrewAgent) -> Actor {
        Actor {
            key: agent.key.clone(),
            role: agent.role.clone(),
            goal: agent.goal.clone(),
            backstory: agent.backstory.clone(),
            llm: agent.llm.clone(),
            tools: agent.tools.clone(),
            delegates: agent.allow_delegation,
            max_iter: agent.max_iter.max(1),
            max_rpm: agent.max_rpm,
            max_retry_limit: agent.max_retry_limit,
        }
    }

    pub fn manager(spec: &CrewSpec) -> Actor {
        Actor {
            key: "manager".to_owned(),
            role: "Crew Manager".to_owned(),
            goal: "Get each task done well by delegating it to the right coworker and checking what comes back".to_owned(),
            backstory: "You manage a team of specialists; you do not do their work yourself.".to_owned(),
            llm: spec.manager_llm.clone(),
            tools: Vec::new(),
            delegates: true,
            max_iter: spec.agents.iter().map(|a| a.max_iter).max().unwrap_or(20).max(1),
            max_rpm: None,
            max_retry_limit: spec.agents.iter().map(|a| a.max_retry_limit).max().unwrap_or(2),
        }
    }
}

/// Where a piece of work sits in a chain of delegations.
#[derive(Debug, Clone)]
pub(crate) struct Delegation {
    pub depth: u32,
    /// The agents the work passed through, the one working now last.
    pub chain: Vec<String>,
    /// (coworker, task) pairs already handed out for this task.
    pub seen: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Delegation {
    pub fn root(actor: &Actor) -> Delegation {
        Delegation {
            depth: 0,
            chain: vec![actor.key.clone()],
            seen: Arc::default(),
        }
    }
}

impl Executor {
    /// `actor`'s final answer to `prompt`, its steps under `prefix`.
    pub(crate) fn answer<'a>(
        &'a self,
        actor: &'a Actor,
        owner: &'a Owner,
        prompt: &'a str,
        expected: &'a str,
        prefix: &'a str,
        delegation: &'a Delegation,
    ) -> BoxFuture<'a, Result<String, Halt>> {
        Box::pin(async move {
            let may_delegate = actor.delegates
                && delegation.depth < self.settings.max_delegation_depth
                && self.spec.agents.iter().any(|a| a.key != actor.key);
            let mut names = actor.tools.clone();
            if may_delegate {
                names.extend([DELEGATE_WORK.to_owned(), ASK_QUESTION.to_owned()]);
            }
            let mut messages = vec![
                StepMessage::new("system", self.system_prompt(actor, &names, may_delegate)),
                StepMessage::new(
                    "user",
                    format!(
                        "Current task: {prompt}\n\nThis is the expected criteria for your final answer: {expected}\nYou MUST return the actual complete content as the final answer, not a summary."
                    ),
                ),
            ];
            let owner = Owner {
                task: owner.task.clone(),
                agent: Some(actor.key.clone()),
            };
            let mut unreadable = 0;
            for n in 0..actor.max_iter {
                let key = format!("{prefix}/i{n}/llm");
                let request =
                    self.request(actor.llm.clone(), messages.clone(), actor.tools.clone());
                let response = self
                    .llm(&key, StepKind::Llm, &owner, actor.max_rpm, request)
                    .await?;
                if !response.tool_calls.is_empty() {
                    unreadable = 0;
                    let mut assistant = StepMessage::new("assistant", response.content.clone());
                    assistant.tool_calls = response.tool_calls.clone();
                    messages.push(assistant);
                    for (c, call) in response.tool_calls.iter().enumerate() {
                        let key = format!("{prefix}/i{n}/tool/{c}");
                        let observation = self
                            .use_tool(
                                actor,
                                &owner,
                                &key,
                                &call.name,
                                call.arguments.clone(),
                                &names,
                                delegation,
                            )
                            .await?;
                        let mut answer = StepMessage::new("tool", observation);
                        answer.tool_call_id = Some(call.id.clone());
                        messages.push(answer);
                    }
                    continue;
                }
                match react::parse(&response.content, &names) {
                    Ok(Parsed::Final(answer)) => return Ok(answer),
                    Ok(Parsed::Action { tool, input }) => {
                        unreadable = 0;
                        messages.push(StepMessage::new("assistant", response.content.clone()));
                        let key = format!("{prefix}/i{n}/tool/0");
                        let observation = self
                            .use_tool(actor, &owner, &key, &tool, input, &names, delegation)
                            .await?;
                        messages.push(StepMessage::new(
                            "user",
                            format!("Observation: {observation}"),
                        ));
                    }
                    Err(e) => {
                        unreadable += 1;
                        if unreadable >= 2 {
                            // Shown the format once already: the text is its answer.
                            let text = response.content.trim();
                            if text.is_empty() {
                                return Err(stop(
                                    StopCode::Failed,
                                    format!("The model gave {} no usable answer.", actor.role),
                                ));
                            }
                            return Ok(text.to_owned());
                        }
                        messages.push(StepMessage::new("assistant", response.content.clone()));
                        messages.push(StepMessage::new(
                            "user",
                            format!(
                                "Your answer could not be read: {e}.\nAnswer again in exactly this format, either\nThought: ...\nAction: <one of: {}>\nAction Input: <JSON object>\nor\nThought: ...\nFinal Answer: <your complete answer>",
                                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                            ),
                        ));
                    }
                }
            }
            messages.push(StepMessage::new(
                "user",
                "You have used all your steps. Give your Final Answer now, with no Action.",
            ));
            let key = format!("{prefix}/final/llm");
            let request = self.request(actor.llm.clone(), messages, Vec::new());
            let response = self
                .llm(&key, StepKind::Llm, &owner, actor.max_rpm, request)
                .await?;
            match react::parse(&response.content, &[]) {
                Ok(Parsed::Final(answer)) if !answer.is_empty() => Ok(answer),
                _ => Err(stop(
                    StopCode::MaxIter,
                    format!(
                        "{} reached its limit of {} steps without an answer.",
                        actor.role, actor.max_iter
                    ),
                )),
            }
        })
    }

    fn system_prompt(&self, actor: &Actor, names: &[String], may_delegate: bool) -> String {
        let mut text = format!(
            "You are {}. {}\nYour personal goal is: {}\n",
            actor.role, actor.backstory, actor.goal
        );
        if names.is_empty() {
            text.push_str(
                "\nAnswer in this format:\nThought: ...\nFinal Answer: <your complete answer>\n",
            );
            return text;
        }
        text.push_str(&format!(
            "\nYou can use these tools: {}\n",
            names.join(", ")
        ));
        if may_delegate {
            let coworkers: Vec<String> = self
                .spec
                .agents
                .iter()
                .filter(|a| a.key != actor.key)
                .map(|a| format!("{} ({})", a.key, a.role))
                .collect();
            text.push_str(&format!(
                "{DELEGATE_WORK}: hand a task to a coworker. Input: {{\"agent\": <coworker>, \"task\": <what to do>, \"context\": <everything they need to know>}}\n\
                 {ASK_QUESTION}: ask a coworker a question. Input: {{\"agent\": <coworker>, \"question\": <the question>, \"context\": <everything they need to know>}}\n\
                 Your coworkers: {}\n",
                coworkers.join(", ")
            ));
        }
        text.push_str(
            "\nTo use a tool answer:\nThought: ...\nAction: <tool name>\nAction Input: <JSON object>\nWhen you have the answer:\nThought: ...\nFinal Answer: <your complete answer>\n",
        );
        text
    }

    /// Runs one tool call (or delegation) and gives what the model is shown.
    #[allow(clippy::too_many_arguments)]
    async fn use_tool(
        &self,
        actor: &Actor,
        owner: &Owner,
        key: &str,
        name: &str,
        arguments: Value,
        offered: &[String],
        delegation: &Delegation,
    ) -> Result<String, Halt> {
        if !offered.iter().any(|t| t == name) {
            return Ok(format!(
                "Error: `{name}` is not one of your tools ({}).",
                offered.join(", ")
            ));
        }
        if name == DELEGATE_WORK || name == ASK_QUESTION {
            return self
                .delegate(actor, owner, key, name, &arguments, delegation)
                .await;
        }
        let response = self.tool(key, owner, name, arguments).await?;
        let text = match &response.output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(bounded(&text, 8000))
    }

    /// A coworker does the work (or answers the question) as its own agent loop.
    async fn delegate(
        &self,
        actor: &Actor,
        owner: &Owner,
        key: &str,
        name: &str,
        arguments: &Value,
        delegation: &Delegation,
    ) -> Result<String, Halt> {
        let field = |f: &str| match &arguments[f] {
            Value::String(s) => s.trim().to_owned(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let wanted = field("agent");
        let work = if name == ASK_QUESTION {
            field("question")
        } else {
            field("task")
        };
        let context = field("context");
        let Some(agent) =
            self.spec.agents.iter().find(|a| {
                a.key.eq_ignore_ascii_case(&wanted) || a.role.eq_ignore_ascii_case(&wanted)
            })
        else {
            let known: Vec<&str> = self.spec.agents.iter().map(|a| a.key.as_str()).collect();
            return Ok(format!(
                "Error: there is no coworker `{wanted}`; choose one of: {}.",
                known.join(", ")
            ));
        };
        if work.is_empty() {
            return Ok(format!(
                "Error: `{name}` needs a non-empty {}.",
                if name == ASK_QUESTION {
                    "question"
                } else {
                    "task"
                }
            ));
        }
        let count = self.delegations.fetch_add(1, Ordering::SeqCst) + 1;
        if count > self.settings.max_delegations {
            return Err(stop(
                StopCode::DelegationLoop,
                format!(
                    "The crew delegated more than {} times; it stopped to avoid going round in circles.",
                    self.settings.max_delegations
                ),
            ));
        }
        if delegation.chain.contains(&agent.key) {
            let path = delegation
                .chain
                .iter()
                .chain([&agent.key])
                .cloned()
                .collect::<Vec<_>>()
                .join(" → ");
            return Err(stop(
                StopCode::DelegationLoop,
                format!("Delegation went round in a circle ({path}); the run stopped."),
            ));
        }
        let repeated = !delegation
            .seen
            .lock()
            .expect("seen lock")
            .insert((agent.key.clone(), work.clone()));
        if repeated {
            return Err(stop(
                StopCode::DelegationLoop,
                format!(
                    "{} delegated the same work to {} again (\"{}\"); the run stopped instead of looping.",
                    actor.role,
                    agent.key,
                    bounded(&work, 80)
                ),
            ));
        }
        if delegation.depth >= self.settings.max_delegation_depth {
            return Err(stop(
                StopCode::DelegationLoop,
                format!(
                    "Delegation nested deeper than {} levels; the run stopped.",
                    self.settings.max_delegation_depth
                ),
            ));
        }
        if let Some(step) = self.lookup(key) {
            return Ok(step.output["answer"]
                .as_str()
                .unwrap_or_default()
                .to_owned());
        }
        let coworker = Actor::from_agent(agent);
        let inner = Delegation {
            depth: delegation.depth + 1,
            chain: delegation
                .chain
                .iter()
                .chain([&agent.key])
                .cloned()
                .collect(),
            seen: delegation.seen.clone(),
        };
        let prompt = if context.is_empty() {
            work.clone()
        } else {
            format!("{work}\n\nContext: {context}")
        };
        let expected = if name == ASK_QUESTION {
            "A clear, direct answer to the question."
        } else {
            "The complete result of the work you were given."
        };
        let answer = self
            .answer(
                &coworker,
                owner,
                &prompt,
                expected,
                &format!("{key}/a"),
                &inner,
            )
            .await?;
        let mut record = self.step_record(
            key,
            StepKind::Delegation,
            &Owner { task: owner.task.clone(), agent: Some(agent.key.clone()) },
            json!({ "by": actor.key, "kind": name, "agent": agent.key, "work": work, "context": context }),
            json!({ "answer": answer }),
        );
        record.tool = Some(name.to_owned());
        let stored = self.note(record).await?;
        Ok(stored["answer"].as_str().unwrap_or(&answer).to_owned())
    }
}
