//! A small JSON Schema check for a task's `output_json`: `type`, `required`, `properties`,
//! `items` and `enum` — what CrewAI's pydantic models come down to. The first mismatch is
//! reported with its path, in words the model can act on.

use serde_json::Value;

pub fn validate(value: &Value, schema: &Value) -> Result<(), String> {
    check(value, schema, "$")
}

fn check(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
            return Err(format!("{path} must be {}", types.join(" or ")));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        return Err(format!(
            "{path} must be one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(object) = value.as_object() {
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    return Err(format!("{path}.{name} is required"));
                }
            }
        }
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (name, sub) in properties {
                if let Some(v) = object.get(name) {
                    check(v, sub, &format!("{path}.{name}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check(v, items, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn is_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    #[test]
    fn checks_type_required_properties_items_enum() {
        let schema = json!({
            "type": "object",
            "required": ["name", "scores"],
            "properties": {
                "name": {"type": "string"},
                "scores": {"type": "array", "items": {"type": "integer"}},
                "grade": {"enum": ["a", "b"]}
            }
        });
        let cases = [
            (json!({"name": "x", "scores": [1, 2]}), Ok(())),
            (json!([]), Err("$ must be object".to_owned())),
            (json!({"name": "x"}), Err("$.scores is required".to_owned())),
            (
                json!({"name": 1, "scores": []}),
                Err("$.name must be string".to_owned()),
            ),
            (
                json!({"name": "x", "scores": [1, "2"]}),
                Err("$.scores[1] must be integer".to_owned()),
            ),
            (
                json!({"name": "x", "scores": [], "grade": "c"}),
                Err("$.grade must be one of [\"a\",\"b\"]".to_owned()),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(validate(&value, &schema), want, "{value}");
        }
    }
}
