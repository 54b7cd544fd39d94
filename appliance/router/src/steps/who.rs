//! Who a step is for: the agent (its settings) and the user, who must be allowed to use it.

use daarion_control_client::{Agent, ClientError};
use daarion_policy::Action;
use daarion_settings::AgentSettings;
use uuid::Uuid;

use crate::turn::quota::refused;
use crate::{App, RouterError};

pub struct StepAgent {
    pub agent: Agent,
    pub settings: AgentSettings,
}

/// The agent and its settings, once policy lets `user` use it.
pub async fn admit(app: &App, user: Uuid, agent_id: &str) -> Result<StepAgent, RouterError> {
    let agent = match app.control.agent(agent_id).await {
        Ok(agent) => agent.value,
        Err(ClientError::NotFound(_)) => return Err(RouterError::UnknownAgent(agent_id.into())),
        Err(e) => return Err(e.into()),
    };
    let settings = match app.control.config_for::<AgentSettings>(&agent.id).await {
        Ok(found) => found.value,
        Err(ClientError::NotFound(_)) => AgentSettings::default(),
        Err(e) => return Err(e.into()),
    };
    let decided = app
        .control
        .decide(&user.to_string(), &agent.id, &Action::Use)
        .await?;
    if !decided.decision.allow {
        return Err(refused(
            "policy",
            format!("This user is not allowed to use {}.", agent.name),
        ));
    }
    Ok(StepAgent { agent, settings })
}
