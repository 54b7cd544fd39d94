//! The model links of an agent's fallback chain, as ready clients: `local/<model>` is the
//! appliance's own swapper; any other provider comes from the control plane's
//! `providers.<name>`, its API key resolved from the reference there. Clients are built once per
//! provider settings version.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daarion_control_client::{ClientError, ControlClient, resolve_secret_in};
use daarion_llm::{
    Ollama, OpenAiCompatible, Price, Provider, Resilient, RetryPolicy, Timeouts, Usage,
};
use daarion_settings::{LOCAL_PROVIDER, ProviderSettings, split_model};

use crate::RouterError;

/// One link of a chain.
#[derive(Clone)]
pub struct Link {
    pub provider: Arc<dyn Provider>,
    pub provider_name: String,
    pub model: String,
    /// The local swapper: its wall time counts as GPU time.
    pub local: bool,
    pub price: Option<Price>,
}

impl Link {
    /// `provider/model`, as policy and traces name it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.provider_name, self.model)
    }

    pub fn cost(&self, usage: &Usage) -> f64 {
        self.price.as_ref().map_or(0.0, |p| p.cost(usage))
    }

    pub fn currency(&self) -> &str {
        self.price.as_ref().map_or("USD", |p| p.currency.as_str())
    }
}

struct Built {
    version: i64,
    provider: Arc<dyn Provider>,
    settings: ProviderSettings,
}

pub struct Providers {
    local: Arc<dyn Provider>,
    retry: RetryPolicy,
    built: Mutex<HashMap<String, Built>>,
    /// Where `file:` key references resolve (`general.secrets_dir`).
    secrets_dir: PathBuf,
}

impl Providers {
    /// `swapper_base` like `http://127.0.0.1:8890/v1`; `swapper_key` the appliance's root token.
    pub fn new(
        swapper_base: &str,
        swapper_key: Option<String>,
        retry: RetryPolicy,
        secrets_dir: PathBuf,
    ) -> Providers {
        // A first request may wait for a model to load (or for another to be evicted).
        let timeouts = Timeouts {
            first_byte: Duration::from_secs(300),
            ..Timeouts::default()
        };
        let local = OpenAiCompatible::new(LOCAL_PROVIDER, swapper_base, swapper_key, timeouts);
        Providers {
            local: Arc::new(Resilient::new(Arc::new(local), retry)),
            retry,
            built: Mutex::default(),
            secrets_dir,
        }
    }

    async fn provider(
        &self,
        control: &ControlClient,
        name: &str,
    ) -> Result<(Arc<dyn Provider>, ProviderSettings), RouterError> {
        let misconfigured = |message: String| RouterError::Provider {
            name: name.to_owned(),
            message,
        };
        let fetched = match control.config_for::<ProviderSettings>(name).await {
            Ok(fetched) => fetched,
            Err(ClientError::Invalid { message, .. }) => return Err(misconfigured(message)),
            Err(e) => return Err(e.into()),
        };
        {
            let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = built.get(name)
                && b.version == fetched.version
            {
                return Ok((b.provider.clone(), b.settings.clone()));
            }
        }
        let settings = fetched.value;
        let key = match &settings.api_key_ref {
            Some(reference) => Some(
                resolve_secret_in(reference, &self.secrets_dir)
                    .map_err(|e| misconfigured(e.to_string()))?,
            ),
            None => None,
        };
        // One setting bounds both the wait for the answer and any silence inside it.
        let timeouts = match settings.timeout_secs.map(Duration::from_secs) {
            Some(limit) => Timeouts {
                first_byte: limit,
                stall: limit,
                ..Timeouts::default()
            },
            None => Timeouts::default(),
        };
        let raw: Arc<dyn Provider> = match settings.kind.as_str() {
            "ollama" => Arc::new(Ollama::new(name, &settings.base_url, timeouts)),
            _ => Arc::new(OpenAiCompatible::new(
                name,
                &settings.base_url,
                key,
                timeouts,
            )),
        };
        let provider: Arc<dyn Provider> = Arc::new(Resilient::new(raw, self.retry));
        self.built.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_owned(),
            Built {
                version: fetched.version,
                provider: provider.clone(),
                settings: settings.clone(),
            },
        );
        Ok((provider, settings))
    }

    /// The clients for `provider/model` links, in order.
    pub async fn links(
        &self,
        control: &ControlClient,
        links: &[String],
    ) -> Result<Vec<Link>, RouterError> {
        let mut out = Vec::with_capacity(links.len());
        for link in links {
            let (name, model) = split_model(link).ok_or_else(|| RouterError::Provider {
                name: link.clone(),
                message: "not provider/model".into(),
            })?;
            if name == LOCAL_PROVIDER {
                out.push(Link {
                    provider: self.local.clone(),
                    provider_name: name.to_owned(),
                    model: model.to_owned(),
                    local: true,
                    price: None,
                });
                continue;
            }
            let (provider, settings) = self.provider(control, name).await?;
            out.push(Link {
                provider,
                provider_name: name.to_owned(),
                model: model.to_owned(),
                local: false,
                price: settings.prices.get(model).map(|p| Price {
                    input_per_million: p.input_per_million,
                    output_per_million: p.output_per_million,
                    currency: p.currency.clone(),
                }),
            });
        }
        Ok(out)
    }
}
