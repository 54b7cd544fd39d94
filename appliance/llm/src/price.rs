//! Cost from usage: a price per million input and output tokens, per provider and model.

use std::collections::HashMap;

use crate::Usage;

#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
    pub currency: String,
}

impl Price {
    /// What `usage` costs at this price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        f64::from(usage.prompt_tokens) * self.input_per_million / 1e6
            + f64::from(usage.completion_tokens) * self.output_per_million / 1e6
    }

    /// The most `tokens` can cost, on whichever side (input or output) is dearer.
    pub fn most_for(&self, tokens: u32) -> f64 {
        f64::from(tokens) * self.input_per_million.max(self.output_per_million) / 1e6
    }
}

#[derive(Debug, Clone, Default)]
pub struct Prices {
    table: HashMap<(String, String), Price>,
}

impl Prices {
    pub fn set(&mut self, provider: &str, model: &str, price: Price) {
        self.table
            .insert((provider.to_owned(), model.to_owned()), price);
    }

    /// `None` for a model without a price (a local model costs nothing but GPU time).
    pub fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<(f64, String)> {
        let price = self.table.get(&(provider.to_owned(), model.to_owned()))?;
        Some((price.cost(usage), price.currency.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_per_million_tokens() {
        let mut prices = Prices::default();
        prices.set(
            "deepseek",
            "deepseek-chat",
            Price {
                input_per_million: 0.27,
                output_per_million: 1.10,
                currency: "USD".into(),
            },
        );
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
        };
        let (cost, currency) = prices.cost("deepseek", "deepseek-chat", &usage).unwrap();
        assert!((cost - 0.82).abs() < 1e-9, "{cost}");
        assert_eq!(currency, "USD");
        assert!(prices.cost("local", "smollm2", &usage).is_none());
        let price = Price {
            input_per_million: 0.27,
            output_per_million: 1.10,
            currency: "USD".into(),
        };
        assert!(
            (price.most_for(2_000_000) - 2.2).abs() < 1e-9,
            "the dearer side"
        );
    }
}
