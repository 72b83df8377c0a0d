//! The OpenAPI document, completed so that it describes the server exactly
//! (issue 22 §7): Schemathesis found statuses the document did not list, requests
//! valid by the schema that the server refused, and no security schemes.
//!
//! `utoipa` derives the shapes and each route's own answers (`api.rs`); this
//! module adds what holds across routes and what `utoipa`'s attributes cannot
//! say well: the answers of the edges (timeout, body limit, malformed input,
//! failure), the security schemes and which route needs which, and every limit
//! the server enforces on input as a schema constraint. Each pattern here states
//! the same rule as the check it names in `svc.rs`; `tests/tests/web_schemathesis.rs`
//! holds the two together.

use serde_json::{Value, json};

/// What Rust's `char::is_whitespace` (and so `str::trim`) takes as whitespace.
const WS: &str = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// A comma or whitespace.
const SEP: &str = r"[,\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// Neither whitespace nor a control character (`char::is_control`).
const VISIBLE: &str = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// As [`VISIBLE`], without `@`.
const VISIBLE_NO_AT: &str =
    r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]";
/// Not a control character.
const NO_CONTROL: &str = r"[^\x00-\x1f\x7f-\x9f]";
/// The domain's ids and slugs: 1 to 64 of `[a-z0-9-]`, no `-` at either end.
const ID: &str = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$";
/// A date every server accepts as a birth or clinical date: a real date from
/// 1900 on, no later than the end of 2025, so never in the future. The server
/// takes any real date up to today; JSON Schema has no "today".
const PAST_DATE: &str = "(19[0-9]{2}|20[01][0-9]|202[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])";

/// `svc::check_len` after `trim`: 1 to `max` characters, no control characters,
/// surrounding whitespace ignored.
fn trimmed_text(max: usize) -> String {
    format!(
        "^{WS}*{VISIBLE}({NO_CONTROL}{{0,{}}}{VISIBLE})?{WS}*$",
        max - 2
    )
}

fn names<T: serde::Serialize>(values: &[T]) -> Vec<Value> {
    values
        .iter()
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
        .collect()
}

fn categories() -> Vec<Value> {
    names(&mebyo_domain::Category::ALL)
}

fn purposes() -> Vec<Value> {
    use mebyo_domain::Purpose::*;
    names(&[
        Care,
        HealthGuidance,
        CheckupFollowUp,
        MedicationReview,
        PersonalUse,
    ])
}

fn alternation(values: &[Value]) -> String {
    let words: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    format!("({})", words.join("|"))
}

/// Constraints of request bodies: (schema, property, constraints).
fn body_limits() -> Vec<(&'static str, &'static str, Value)> {
    let text = |max: usize, what: &str| {
        json!({"pattern": trimmed_text(max),
               "description": format!("{what}: 1 to {max} characters without control characters; surrounding whitespace is ignored")})
    };
    let password = json!({"minLength": crate::svc::MIN_PASSWORD_CHARS,
                          "maxLength": crate::svc::MAX_PASSWORD_CHARS});
    vec![
        ("SignupInput", "name", text(100, "name")),
        ("SignupInput", "address", text(200, "address")),
        (
            "SignupInput",
            "birth_date",
            json!({
            "pattern": format!("^{WS}*{PAST_DATE}{WS}*$"),
            "description": "YYYY-MM-DD, a real date from 1900-01-01 up to today (the pattern admits those up to 2025-12-28)"}),
        ),
        (
            "SignupInput",
            "email",
            json!({
            "minLength": 3, "maxLength": mebyo_crypto::MAX_EMAIL_CHARS,
            "pattern": format!("^{VISIBLE}+@{VISIBLE_NO_AT}+$"),
            "description": "local@domain, no whitespace or control characters, at most 254 characters"}),
        ),
        (
            "SignupInput",
            "phone",
            json!({
            "pattern": format!(r"^{WS}*(\+?[0-9]([ -]?[0-9]){{5,14}})?{WS}*$"),
            "description": "An optional + and 6 to 15 digits, single spaces or hyphens between them; empty for none"}),
        ),
        ("SignupInput", "password", password.clone()),
        ("PasswordChange", "new_password", password),
        (
            "CodeInput",
            "code",
            json!({"pattern": "^[0-9]{6}$", "description": "the 6 digits the app shows"}),
        ),
        ("ConsentInput", "provider", json!({"pattern": ID})),
        (
            "ConsentInput",
            "categories",
            json!({
            "items": {"type": "string", "enum": categories()},
            "minItems": 1, "maxItems": mebyo_domain::Category::ALL.len()}),
        ),
        ("ConsentInput", "purpose", json!({"enum": purposes()})),
        (
            "ConsentInput",
            "days",
            json!({"minimum": 1, "maximum": 3650}),
        ),
        (
            "ConsentInput",
            "years_back",
            json!({"minimum": 0, "maximum": 120}),
        ),
    ]
}

/// Constraints of the vital-sign variants (`svc::add_vital`), by the `kind` each
/// variant of `VitalInput` carries. Only "diastolic below systolic" cannot be
/// said in JSON Schema; it is stated in the description.
fn vital_limits() -> Vec<(&'static str, &'static str, Value)> {
    let at = json!({
        "pattern": format!(
            "^{WS}*({PAST_DATE}T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{{1,9}})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]))?)?{WS}*$"),
        "description": "RFC 3339, or YYYY-MM-DDTHH:MM read as JST; in the past, at most 120 years ago; empty or absent for now"});
    vec![
        (
            "blood_pressure",
            "systolic",
            json!({"minimum": 50, "maximum": 300,
            "description": "mmHg; above the diastolic value"}),
        ),
        (
            "blood_pressure",
            "diastolic",
            json!({"minimum": 20, "maximum": 200,
            "description": "mmHg; below the systolic value"}),
        ),
        ("blood_pressure", "at", at.clone()),
        ("body_weight", "kg", json!({"minimum": 1, "maximum": 500})),
        ("body_weight", "at", at),
    ]
}

/// Constraints of path and query parameters, by name (one meaning per name).
fn parameter_limits() -> Vec<(&'static str, Value)> {
    let cats = alternation(&categories());
    vec![
        ("person", json!({"type": "string", "pattern": ID})),
        ("consent", json!({"type": "string", "pattern": ID})),
        ("id", json!({"type": "string", "pattern": ID})),
        ("media", json!({"type": "string", "pattern": ID})),
        (
            "categories",
            json!({"type": "string",
            // `svc::parse_categories`: comma-separated, each piece trimmed, empty
            // pieces skipped, at least one category.
            "pattern": format!("^{SEP}*{cats}({WS}*,{SEP}*{cats})*{SEP}*$")}),
        ),
        (
            "purpose",
            json!({"type": "string",
            "pattern": format!("^{WS}*{}{WS}*$", alternation(&purposes()))}),
        ),
        (
            "days",
            json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 36500}),
        ),
        (
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
    ]
}

/// Who may call a route: nobody in particular, a session (bearer token, or the
/// cookie), a session that changes state (the cookie then needs the CSRF
/// header, P4.6(1)), or the monitoring system (P4.4).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Read,
    Write,
    Monitoring,
}

fn access(method: &str, path: &str) -> Access {
    match (method, path) {
        ("get", "/metrics") => Access::Monitoring,
        ("post", "/api/v1/session" | "/api/v1/signup") => Access::Public,
        (
            _,
            "/api/v1/policy" | "/api/v1/notices" | "/livez" | "/readyz" | "/checkpoint"
            | "/api/openapi.json",
        ) => Access::Public,
        ("get", _) => Access::Read,
        _ => Access::Write,
    }
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}})
}

/// Adds an answer unless the route's own attribute already lists it.
fn answer(op: &mut Value, status: &str, description: &str) {
    let responses = &mut op["responses"];
    if responses.get(status).is_none() {
        responses[status] = error(description);
    }
}

fn complete_operation(method: &str, path: &str, op: &mut Value) {
    answer(
        op,
        "408",
        "The request took longer than the server's limit (P4.4)",
    );
    answer(op, "500", "A failure of the server; no detail (P4.4)");
    if op.get("requestBody").is_some() {
        answer(op, "400", "The body is not JSON");
        answer(
            op,
            "413",
            "The body is larger than the server's limit (P4.4)",
        );
        answer(op, "415", "The body is not sent as application/json");
        answer(
            op,
            "422",
            "The body does not fit the schema, or breaks a rule",
        );
    }
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    if params.iter().any(|p| p["in"] == "query") {
        answer(op, "400", "The query does not parse");
    }
    let (security, statuses): (Value, &[(&str, &str)]) = match access(method, path) {
        Access::Public => return,
        Access::Read => (
            json!([{"bearer": []}, {"session_cookie": []}]),
            &[("401", "No session, or it has ended")],
        ),
        Access::Write => (
            json!([{"bearer": []}, {"session_cookie": [], "csrf": []}]),
            &[
                ("401", "No session, or it has ended"),
                (
                    "403",
                    "The cookie came without the session's CSRF token, or the role may not do this",
                ),
            ],
        ),
        Access::Monitoring => (
            json!([{"metrics_token": []}]),
            &[("401", "Not the monitoring token (P4.4)")],
        ),
    };
    op["security"] = security;
    for (status, description) in statuses {
        answer(op, status, description);
    }
}

fn constrain(schema: &mut Value, property: &str, limits: &Value) {
    let Some(target) = schema["properties"].get_mut(property) else {
        return;
    };
    // `Option<T>` fields are `oneOf [null, T]` or a type list; constrain the value.
    let target = match target.get_mut("oneOf") {
        Some(Value::Array(alts)) => match alts.iter_mut().find(|a| a["type"] != "null") {
            Some(t) => t,
            None => return,
        },
        _ => target,
    };
    if let (Some(t), Some(l)) = (target.as_object_mut(), limits.as_object()) {
        for (k, v) in l {
            t.insert(k.clone(), v.clone());
        }
    }
}

fn complete_schemas(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    for (name, property, limits) in body_limits() {
        constrain(&mut schemas[name], property, &limits);
    }
    if let Some(Value::Array(variants)) = schemas["VitalInput"].get_mut("oneOf") {
        for variant in variants {
            let kind = variant["properties"]["kind"]["enum"][0].clone();
            for (k, property, limits) in vital_limits() {
                if kind == k {
                    constrain(variant, property, &limits);
                }
            }
        }
    }
}

fn complete_parameters(op: &mut Value) {
    let Some(Value::Array(params)) = op.get_mut("parameters") else {
        return;
    };
    let limits = parameter_limits();
    for p in params {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        if let Some((_, schema)) = limits.iter().find(|(n, _)| *n == name) {
            p["schema"] = schema.clone();
        }
    }
}

fn security_schemes() -> Value {
    json!({
        "bearer": {"type": "http", "scheme": "bearer",
            "description": "The `token` that POST /api/v1/session answers with."},
        "session_cookie": {"type": "apiKey", "in": "cookie", "name": crate::svc::COOKIE,
            "description": "The browser's session cookie, set by sign-in."},
        "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
            "description": "The session's `csrf_token`; with the cookie, every state-changing call needs it (P4.6(1))."},
        "metrics_token": {"type": "http", "scheme": "bearer",
            "description": "The monitoring token, `DATA/auth/metrics-token` (P4.4)."}
    })
}

/// `/metrics`, which `utoipa` does not derive (its answer is not JSON).
fn metrics_path() -> Value {
    json!({"get": {
        "description": "Prometheus metrics (P4.4), for the monitoring system only.",
        "operationId": "metrics",
        "responses": {
            "200": {"description": "OpenMetrics text",
                "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}},
            "404": error("No monitoring token is configured: metrics are off")
        }
    }})
}

/// The whole document as served at `/api/openapi.json`.
pub fn document() -> Value {
    use utoipa::OpenApi;
    let mut doc = serde_json::to_value(crate::api::ApiDoc::openapi()).unwrap_or(Value::Null);
    doc["paths"]["/metrics"] = metrics_path();
    doc["components"]["securitySchemes"] = security_schemes();
    complete_schemas(&mut doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if op.get("responses").is_some() {
                    complete_parameters(op);
                    complete_operation(method, path, op);
                }
            }
        }
    }
    doc
}
