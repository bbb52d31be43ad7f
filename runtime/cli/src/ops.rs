//! Commands made from the API's own OpenAPI document, as the aws command
//! line is made from its service models: one noun per collection that the
//! hand-written commands leave out (`orgs`, `users`, `datasets`, `catalog`,
//! `filings`, `incidents`, `agreements`, `admissions`, …) and one verb per
//! operation, so every operation of every role is a command and none drifts
//! from the server it ships with.
//!
//! A path `/v1/NOUN[/{a}][/literal…][/{b}]…` becomes `keyong NOUN VERB A B`:
//! `list` (GET of the collection), `create` (POST to it), `show` (GET of one
//! item), else the literal segments joined by `-` (`users confirm ID`,
//! `datasets versions-retire NAME SEQ`); a POST whose verb a GET already
//! has is named by its operation (`datasets record-consent NAME`). Query
//! parameters become flags; a request body is `--data JSON|@FILE`, and each
//! of its top-level scalar fields (and lists of scalars) is a flag too,
//! which overrides `--data`. A list without `--limit` or `--after` is read
//! to its end.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value};

use keyong_client::Method;

use crate::profile::Connection;

/// Operations the hand-written commands cover, and the command that does
/// (a test holds each to an existing command). Other operations under the
/// hand-written nouns (`scenarios`, `jobs`) are added to them.
pub(crate) const HANDWRITTEN: [(&str, &str, &str); 25] = [
    ("GET", "/v1/health", "api"),
    ("GET", "/v1/platform-key", "verify"),
    ("POST", "/v1/login", "login"),
    ("POST", "/v1/logout", "logout"),
    ("GET", "/v1/me", "whoami"),
    ("POST", "/v1/me/credential", "rotate"),
    ("PUT", "/v1/me/signing-key", "register-key"),
    ("GET", "/v1/audit/export", "audit export"),
    ("GET", "/v1/audit/verify", "audit check"),
    ("GET", "/v1/scenarios", "scenarios list"),
    ("POST", "/v1/scenarios", "scenarios apply"),
    ("GET", "/v1/scenarios/{id}", "scenarios show"),
    ("GET", "/v1/scenarios/{id}/budget", "scenarios budget"),
    ("GET", "/v1/modules", "modules list"),
    ("POST", "/v1/modules", "modules submit"),
    ("GET", "/v1/modules/{id}", "modules show"),
    ("GET", "/v1/jobs", "jobs list"),
    ("POST", "/v1/jobs", "jobs submit"),
    ("POST", "/v1/jobs/preview", "jobs preview"),
    ("GET", "/v1/jobs/{id}", "jobs show"),
    ("POST", "/v1/jobs/{id}/withdraw", "jobs withdraw"),
    ("POST", "/v1/jobs/{id}/release", "jobs release"),
    ("GET", "/v1/reviews", "reviews queue"),
    ("GET", "/v1/jobs/{id}/review", "reviews show"),
    ("POST", "/v1/jobs/{id}/votes", "reviews vote"),
];

/// What each generated noun is, in the plan's terms.
const NOUNS: [(&str, &str); 13] = [
    ("admissions", "Operator admissions (准入): announce, applications, evaluation, publicity (公示), objections"),
    ("agreements", "Operation agreements (授权运营协议): sign, renew, terminate"),
    ("catalog", "The catalog (数据目录): register, confirm, change, reject entries"),
    ("catalog-requests", "Catalog update requests: ask, forward, assign, answer"),
    ("datasets", "Datasets: ingest (初步脱敏), approve, versions, consents"),
    ("filings", "Filings (备案) in the audit log"),
    ("incidents", "Incidents (关联汇聚风险): raise, opinions, assessment, decision, stop"),
    ("objections", "Objections to catalog entries: raise, answer, resolve"),
    ("orgs", "Organisations: create, list, show, the exit record"),
    ("policies", "Desensitisation policies (初步脱敏) of datasets"),
    ("products", "Released data products (public)"),
    ("supervision", "The authority's supervision: samples, findings, reviewer statistics"),
    ("users", "Users: create, confirm reviewers, reissue and revoke credentials"),
];

fn handwritten(method: &str, path: &str) -> bool {
    HANDWRITTEN.iter().any(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path)
}

/// Flags every command has already (global), which a body field cannot take.
const GLOBAL: [&str; 8] = ["server", "profile", "token-file", "ca-cert", "json", "log-format", "data", "help"];

/// What a flag of a body field holds.
#[derive(Clone, Copy, Debug)]
enum Scalar {
    String,
    Integer,
    Number,
    Boolean,
}

#[derive(Debug)]
struct Field {
    /// The JSON field, and the flag's id (its flag is `--name-with-dashes`).
    name: String,
    scalar: Scalar,
    list: bool,
}

#[derive(Debug)]
struct Op {
    method: Method,
    /// The path template, e.g. `/v1/users/{id}/confirm`.
    path: String,
    params: Vec<String>,
    query: Vec<String>,
    /// Whether the operation takes a JSON body.
    body: bool,
    fields: Vec<Field>,
    command: Command,
}

/// The generated nouns, each with its verbs.
pub(crate) struct Ops {
    nouns: BTreeMap<String, (String, BTreeMap<String, Op>)>,
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// The non-null schema of a field (`Option<T>` is `oneOf: [null, T]`).
fn concrete<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array)
            && let Some(alt) = alts.iter().map(|a| resolve(doc, a)).find(|a| a.get("type") != Some(&"null".into()))
        {
            return alt;
        }
    }
    schema
}

fn type_of(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn scalar(schema: &Value) -> Option<Scalar> {
    match type_of(schema)? {
        "string" => Some(Scalar::String),
        "integer" => Some(Scalar::Integer),
        "number" => Some(Scalar::Number),
        "boolean" => Some(Scalar::Boolean),
        _ => None,
    }
}

fn first_sentence(text: &str) -> String {
    let line = text.split("\n\n").next().unwrap_or_default().replace('\n', " ");
    let first = match line.find(". ") {
        Some(i) => &line[..i],
        None => &line,
    };
    first.trim_end_matches('.').to_string()
}

/// A flag for one body field or query parameter, with its help and values.
fn flag(doc: &Value, name: &str, schema: &Value, help: &str, list: bool) -> Arg {
    let s = concrete(doc, schema);
    let item = if list { concrete(doc, &s["items"]) } else { s };
    let mut arg = Arg::new(name.to_string())
        .long(name.replace('_', "-"))
        .value_name(name.to_uppercase())
        .help(help.replace('\n', " "))
        .action(if list { ArgAction::Append } else { ArgAction::Set });
    if let Some(values) = item.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().filter_map(Value::as_str).map(str::to_string).collect();
        arg = arg.value_parser(clap::builder::PossibleValuesParser::new(values));
    }
    arg
}

impl Ops {
    /// Reads the document this binary serves.
    pub(crate) fn load() -> Self {
        let doc: Value = serde_json::from_str(&keyong_server::openapi_document()).expect("the served document is JSON");
        let mut nouns: BTreeMap<String, (String, BTreeMap<String, Op>)> = BTreeMap::new();
        let paths = doc["paths"].as_object().expect("paths");
        for (path, item) in paths {
            let Some(rest) = path.strip_prefix("/v1/") else { continue };
            let segments: Vec<&str> = rest.split('/').collect();
            let noun = segments[0].to_string();
            let params: Vec<String> = segments[1..]
                .iter()
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_string)
                .collect();
            let tail: Vec<&str> = segments[1..].iter().copied().filter(|s| !s.starts_with('{')).collect();
            for (method, op) in item.as_object().expect("path item") {
                if handwritten(method, path) {
                    continue;
                }
                let method = match method.as_str() {
                    "get" => Method::GET,
                    "post" => Method::POST,
                    "put" => Method::PUT,
                    _ => continue,
                };
                let operation = op["operationId"].as_str().unwrap_or_default().replace('_', "-");
                let mut verb = match (tail.is_empty(), &method, params.is_empty()) {
                    (false, ..) => tail.join("-"),
                    (true, &Method::GET, true) => "list".into(),
                    (true, &Method::POST, true) => "create".into(),
                    (true, &Method::GET, false) => "show".into(),
                    _ => operation.clone(),
                };
                let (tag, verbs) = nouns.entry(noun.clone()).or_default();
                if tag.is_empty() {
                    op["tags"][0].as_str().unwrap_or_default().clone_into(tag);
                }
                if verbs.contains_key(&verb) {
                    verb = operation;
                }
                assert!(!verb.is_empty() && !verbs.contains_key(&verb), "{method} {path}: no unique verb");
                let summary = op["summary"].as_str().unwrap_or_default();
                let mut command = Command::new(verb.clone()).about(first_sentence(summary)).long_about(format!(
                    "{} {path}: {}",
                    method,
                    op["description"].as_str().unwrap_or(summary)
                ));
                for p in &params {
                    command = command.arg(Arg::new(p.clone()).value_name(p.to_uppercase()).required(true));
                }
                let mut query = Vec::new();
                command = command.next_help_heading("Filters");
                for q in op["parameters"].as_array().into_iter().flatten().filter(|q| q["in"] == "query") {
                    let name = q["name"].as_str().unwrap_or_default().to_string();
                    command =
                        command.arg(flag(&doc, &name, &q["schema"], q["description"].as_str().unwrap_or(""), false));
                    query.push(name);
                }
                let body_schema = &op["requestBody"]["content"]["application/json"]["schema"];
                let mut fields = Vec::new();
                if !body_schema.is_null() {
                    command = command.next_help_heading("Request").arg(
                        Arg::new("data")
                            .long("data")
                            .value_name("JSON|@FILE")
                            .help("The request body as JSON, or @FILE to read it from a file; the flags below override its fields"),
                    );
                    let schema = resolve(&doc, body_schema);
                    let required: Vec<&str> =
                        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    for (name, field) in schema["properties"].as_object().into_iter().flatten() {
                        let s = concrete(&doc, field);
                        let (list, kind) = match type_of(s) {
                            Some("array") => (true, scalar(concrete(&doc, &s["items"]))),
                            _ => (false, scalar(s)),
                        };
                        let flag_name = name.replace('_', "-");
                        let Some(kind) = kind else { continue };
                        if GLOBAL.contains(&flag_name.as_str()) || query.contains(name) || params.contains(name) {
                            continue;
                        }
                        let description = field["description"].as_str().or(s["description"].as_str()).unwrap_or("");
                        let help = match (required.contains(&name.as_str()), list) {
                            (true, true) => format!("{description} (required; repeat for each)"),
                            (true, false) => format!("{description} (required)"),
                            (false, true) => format!("{description} (repeat for each)"),
                            (false, false) => description.to_string(),
                        };
                        command = command.arg(flag(&doc, name, field, help.trim(), list));
                        fields.push(Field { name: name.clone(), scalar: kind, list });
                    }
                }
                let op = Op {
                    method,
                    path: path.clone(),
                    params: params.clone(),
                    query,
                    body: !body_schema.is_null(),
                    fields,
                    command,
                };
                verbs.insert(verb, op);
            }
        }
        Ops { nouns }
    }

    /// `cli` with a subcommand for each generated noun, and the generated
    /// verbs of the hand-written nouns added to them.
    pub(crate) fn augment(&self, mut cli: Command) -> Command {
        for (noun, (tag, verbs)) in &self.nouns {
            if cli.find_subcommand(noun).is_some() {
                cli = cli.mut_subcommand(noun, |mut sub| {
                    for op in verbs.values() {
                        sub = sub.subcommand(op.command.clone());
                    }
                    sub
                });
                continue;
            }
            let about = NOUNS.iter().find(|(n, _)| n == noun).map_or(tag.as_str(), |(_, a)| a);
            let mut sub = Command::new(noun.clone())
                .about(format!("{about} (/v1/{noun})"))
                .subcommand_required(true)
                .arg_required_else_help(true);
            for op in verbs.values() {
                sub = sub.subcommand(op.command.clone());
            }
            cli = cli.subcommand(sub);
        }
        cli
    }

    /// Whether `keyong NOUN VERB` is one of the generated commands.
    pub(crate) fn owns(&self, noun: &str, verb: Option<&str>) -> bool {
        self.nouns.get(noun).is_some_and(|(_, verbs)| verb.is_some_and(|v| verbs.contains_key(v)))
    }

    /// Runs `keyong NOUN VERB …` as parsed into `matches` (the noun's).
    pub(crate) async fn run(&self, conn: &Connection, noun: &str, matches: &ArgMatches) -> anyhow::Result<()> {
        let (verb, args) = matches.subcommand().context("a verb is required")?;
        let op = &self.nouns[noun].1[verb];
        let mut path = op.path.clone();
        for p in &op.params {
            let value: &String = args.get_one(p).expect("required");
            // `..` would climb to another endpoint (URLs resolve dot segments).
            if matches!(value.as_str(), "" | "." | "..") {
                bail!("{} `{value}` is not an id or a name", p.to_uppercase());
            }
            path = path.replace(&format!("{{{p}}}"), &encode(value));
        }
        let query: Vec<String> =
            op.query.iter().filter_map(|q| args.get_one::<String>(q).map(|v| format!("{q}={}", encode(v)))).collect();
        let paged = op.query.iter().any(|q| q == "limit");
        let whole_list =
            paged && args.get_one::<String>("limit").is_none() && args.get_one::<String>("after").is_none();
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let body = if op.body { Some(body(op, args)?) } else { None };
        let client = conn.client().await?;
        let answer = if whole_list && op.method == Method::GET {
            Value::Array(client.all::<Value>(&path).await?)
        } else {
            client.call_json(op.method.clone(), &path, body).await?
        };
        if conn.json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        } else {
            let text = show(&answer);
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        Ok(())
    }
}

/// A path segment or query value, percent-encoded.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request body: `--data`, then each field flag given.
fn body(op: &Op, args: &ArgMatches) -> anyhow::Result<Value> {
    let mut body = match args.get_one::<String>("data") {
        Some(d) => crate::json_arg(d)?,
        None => Value::Object(Map::new()),
    };
    for field in &op.fields {
        let Some(values) = args.get_many::<String>(&field.name) else { continue };
        let flag = format!("--{}", field.name.replace('_', "-"));
        let typed = values
            .map(|v| {
                let bad = |what: &str| format!("{flag}: `{v}` is not {what}");
                Ok(match field.scalar {
                    Scalar::String => Value::String(v.clone()),
                    Scalar::Integer => Value::from(v.parse::<i64>().with_context(|| bad("an integer"))?),
                    Scalar::Number => Value::from(v.parse::<f64>().with_context(|| bad("a number"))?),
                    Scalar::Boolean => Value::from(v.parse::<bool>().with_context(|| bad("true or false"))?),
                })
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        let value = if field.list { Value::Array(typed) } else { typed.into_iter().next().expect("one value") };
        let Value::Object(map) = &mut body else { bail!("--data must be a JSON object when field flags are given") };
        map.insert(field.name.clone(), value);
    }
    Ok(body)
}

/// A scalar as a table cell or a line; anything else as compact JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The columns a table of `items` shows: identifying ones first, then the
/// other scalar fields, at most 7.
fn columns(items: &[Value]) -> Vec<String> {
    const FIRST: [&str; 8] = ["id", "seq", "name", "title", "kind", "role", "status", "org_id"];
    let Some(Value::Object(first)) = items.first() else { return Vec::new() };
    let scalar: Vec<&String> = first.iter().filter(|(_, v)| !v.is_object() && !v.is_array()).map(|(k, _)| k).collect();
    let mut cols: Vec<String> =
        FIRST.iter().filter(|c| scalar.iter().any(|s| s == *c)).map(|c| c.to_string()).collect();
    cols.extend(scalar.into_iter().filter(|s| !FIRST.contains(&s.as_str())).cloned());
    cols.truncate(7);
    cols
}

/// An answer as people read it: a list as a table, an object as `key: value` lines.
fn show(answer: &Value) -> String {
    match answer {
        Value::Array(items) if items.is_empty() => "(none)".into(),
        Value::Array(items) => {
            let cols = columns(items);
            let rows = items.iter().map(|i| cols.iter().map(|c| cell(&i[c.as_str()])).collect()).collect();
            let header: Vec<&str> = cols.iter().map(String::as_str).collect();
            crate::remote::table(&header, rows)
        }
        // A page (`next` is left out of the last one).
        Value::Object(map)
            if map.get("items").is_some_and(Value::is_array) && map.keys().all(|k| k == "items" || k == "next") =>
        {
            let mut text = show(&map["items"]);
            if let Some(next) = map["next"].as_str() {
                text.push_str(&format!("\nmore: --after {next}\n"));
            }
            text
        }
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}: {}\n", cell(v))).collect(),
        other => cell(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_a_command_by_hand_or_made_here() {
        let ops = Ops::load();
        let doc: Value = serde_json::from_str(&keyong_server::openapi_document()).unwrap();
        let mut made = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if handwritten(method, path) {
                    continue;
                }
                let noun = path.trim_start_matches("/v1/").split('/').next().unwrap();
                let found = ops.nouns[noun]
                    .1
                    .values()
                    .any(|op| op.path == *path && op.method.as_str().eq_ignore_ascii_case(method));
                assert!(found, "{method} {path} has no command");
                made += 1;
            }
        }
        assert!(made > 50, "{made}");
        // Under a hand-written noun, the operations it lacks.
        assert!(verbs_of(&ops, "scenarios").iter().eq(["approve", "review"].iter()));
        assert!(verbs_of(&ops, "jobs").iter().eq(["close", "signoff"].iter()));
        // The names are the documented ones.
        let verbs = |noun: &str| verbs_of(&ops, noun);
        assert!(verbs("users").contains(&"confirm".to_string()));
        assert!(verbs("datasets").contains(&"versions-retire".to_string()));
        assert!(verbs("datasets").contains(&"record-consent".to_string()));
        assert!(verbs("orgs").iter().eq(["create", "exit", "list", "show"].iter()));
    }

    fn verbs_of(ops: &Ops, noun: &str) -> Vec<String> {
        ops.nouns[noun].1.keys().cloned().collect()
    }

    #[test]
    fn flags_fill_the_body_with_their_types() {
        let ops = Ops::load();
        let op = &ops.nouns["supervision"].1["samples"];
        let args = op.command.clone().try_get_matches_from(["samples", "--size", "3"]).unwrap();
        assert_eq!(body(op, &args).unwrap(), serde_json::json!({ "size": 3 }));
        let args = op.command.clone().try_get_matches_from(["samples", "--size", "x"]).unwrap();
        assert_eq!(body(op, &args).unwrap_err().to_string(), "--size: `x` is not an integer");
        let op = &ops.nouns["incidents"].1["create"];
        let args = op
            .command
            .clone()
            .try_get_matches_from(["create", "--data", r#"{"reason": "x"}"#, "--scenarios", "a", "--scenarios", "b"])
            .unwrap();
        assert_eq!(body(op, &args).unwrap(), serde_json::json!({ "reason": "x", "scenarios": ["a", "b"] }));
        let op = &ops.nouns["orgs"].1["create"];
        assert!(
            op.command.clone().try_get_matches_from(["create", "--kind", "nonsense"]).is_err(),
            "enums are checked"
        );
        assert_eq!(encode("滨 江/x"), "%E6%BB%A8%20%E6%B1%9F%2Fx");
    }
}
