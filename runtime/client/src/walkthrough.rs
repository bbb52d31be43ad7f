//! The whole life of a job, driven through the API as its users would:
//! the authority sets up the agency and an operator, the agency ingests and
//! desensitises a feed, the authority catalogs it, the operator applies for a
//! scenario (agency review, authority approval), submits an SM2-signed
//! module, runs it, two reviewers approve, the operator releases the result
//! with a signed receipt, and the authority verifies the audit chain.

use std::time::Duration;

use keyong_crypto::SigningKey;
use keyong_model::api::*;
use keyong_model::{Decision, JobStatus, Manifest, Mode, OrgKind, Role};

use crate::{Client, Error, Result, sign_module, verify_bundle};

/// What the walkthrough needs from its caller.
pub struct Inputs {
    /// The server's base URL.
    pub base: String,
    /// The first authority user's token (from `<data-root>/bootstrap-token`).
    pub bootstrap_token: String,
    /// Raw feed file name in the landing zone and the policy to apply.
    pub source: String,
    pub policy: String,
    /// The module and its manifest (the `scenario` field is filled in here).
    pub wasm: Vec<u8>,
    pub manifest: Manifest,
    /// ρ for the run.
    pub rho: f64,
    /// The rest of the plan's story after the release ([`crate::story`]):
    /// a second raw feed of the same dataset in the landing zone, which
    /// becomes its next version.
    pub story: Option<String>,
}

/// Tokens of the users the walkthrough created.
#[derive(Debug, Clone)]
pub struct Actors {
    pub authority: String,
    pub agency: String,
    pub reviewers: [String; 2],
    pub operator: String,
    pub operator_org: String,
    /// The data provider (数源部门) of the walkthrough's dataset.
    pub provider: String,
    /// The operator's authorisation agreement.
    pub agreement: String,
    pub operator_key: SigningKey,
}

/// Everything the walkthrough saw.
pub struct Outcome {
    pub actors: Actors,
    pub catalog: CatalogEntry,
    pub scenario: Scenario,
    pub module: ModuleInfo,
    pub job: JobView,
    pub review: ReviewView,
    pub bundle: ReleaseBundle,
    pub audit: AuditVerification,
    /// Every response body the operator received before the release.
    pub operator_responses: Vec<serde_json::Value>,
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serialisable")
}

/// Sets up the authority, agency, reviewers and one operator.
pub async fn setup_actors(base: &Client, bootstrap_token: &str, say: &mut dyn FnMut(&str)) -> Result<Actors> {
    // The first credential works once, at login, which replaces it.
    let session = base.login(bootstrap_token).await?;
    let authority_credential = session.credential.map_or_else(|| bootstrap_token.to_string(), |c| c.token);
    say("authority signed in with the first credential (it works once) and received its own");
    let authority = base.as_user(&authority_credential);
    let agency_org =
        authority.create_org(&CreateOrg { name: "实施机构 Operating Agency".into(), kind: OrgKind::Agency }).await?;
    let user = |org: &str, name: &str, role| CreateUser { org_id: org.into(), name: name.into(), role };
    let agency = authority.create_user(&user(&agency_org.id, "agency officer", Role::Agency)).await?;
    say(&format!("[二(二)] authority created the agency `{}` and its officer", agency_org.name));
    let agency_client = base.as_user(&agency.token);
    // Reviewers are agency staff; each account takes effect only when the
    // authority confirms it, with a fresh token the agency never sees.
    let mut reviewers = Vec::new();
    for name in ["reviewer 1", "reviewer 2"] {
        let created = agency_client.create_user(&user(&agency_org.id, name, Role::Reviewer)).await?;
        reviewers.push(authority.confirm_reviewer(&created.user.id).await?.token);
    }
    say("[二(七)3] agency created two reviewer accounts; the authority confirmed each (filed) and issued their tokens");
    let provider_org = authority
        .create_org(&CreateOrg { name: "市供电公司 City Power Supply Co.".into(), kind: OrgKind::Provider })
        .await?;
    let provider = authority.create_user(&user(&provider_org.id, "data steward", Role::Provider)).await?;
    say(&format!("[二(三)] authority registered the data provider (数源部门) `{}`", provider_org.name));
    let until = crate::now().date() + time::Duration::days(730);
    let until = until.format(time::macros::format_description!("[year]-[month]-[day]")).expect("formattable");
    let (op_org, agreement) = agency_client.admit_operator("运营机构 Grid Insights Ltd.", &until).await?;
    let operator = agency_client.create_user(&user(&op_org.id, "operator developer", Role::Operator)).await?;
    say(&format!(
        "[二(六)1] agency admitted operator `{}` by public tender: application, evaluation, publicity without objection, agreement until {until} passed by its collective decision (三重一大) and filed with the authority",
        op_org.name
    ));
    let key = SigningKey::generate()?;
    base.as_user(&operator.token).set_signing_key(&key.public_key_hex()).await?;
    say("operator registered its SM2 public key");
    Ok(Actors {
        authority: authority_credential,
        agency: agency.token,
        reviewers: [reviewers[0].clone(), reviewers[1].clone()],
        operator: operator.token,
        operator_org: op_org.id,
        provider: provider.token,
        agreement: agreement.id,
        operator_key: key,
    })
}

/// Runs the walkthrough, reporting each step through `say`.
pub async fn run(inputs: Inputs, say: &mut dyn FnMut(&str)) -> Result<Outcome> {
    let base = Client::new(&inputs.base);
    let actors = setup_actors(&base, &inputs.bootstrap_token, say).await?;
    let (authority, agency, operator) =
        (base.as_user(&actors.authority), base.as_user(&actors.agency), base.as_user(&actors.operator));
    let mut seen = Vec::new();

    let provider = base.as_user(&actors.provider);
    let ingest = IngestRequest {
        policy: inputs.policy.clone(),
        source: inputs.source.clone(),
        rho_budget: Some(4.0),
        delta_budget: Some(1e-6),
    };
    let entry = provider.catalog_dataset(&authority, &ingest, "energy").await?;
    say(&format!(
        "[二(三)] provider registered catalog entry `{}` ({} fields, proposed grade {}); the authority confirmed it (filed)",
        entry.name,
        entry.columns.len(),
        entry.grade
    ));
    say(&format!(
        "[二(三)] provider ingested version {} of `{}`: {} rows desensitised (初步脱敏), SM3 {}…, unit column `{}`; the authority approved it (filed); dataset budget ρ = {}",
        entry.seq,
        entry.name,
        entry.row_count,
        &entry.version[..12],
        entry.unit_column,
        entry.budget.rho_total
    ));
    seen.push(json(&operator.catalog().await?));

    let scenario = operator
        .apply_scenario(&ScenarioRequest {
            title: "分区居民用电分析 Household electricity use by district".into(),
            purpose: "Plan grid capacity per district from aggregate household consumption.".into(),
            datasets: vec![ScenarioDataset {
                name: entry.name.clone(),
                version: None,
                columns: inputs.manifest.columns.clone(),
                row_filter: None,
            }],
            modes: vec![Mode::Aggregate, Mode::Sql, Mode::Blocks, Mode::Reviewed],
            rho_budget: 2.0,
            delta_budget: 1e-7,
            valid_days: 365,
        })
        .await?;
    seen.push(json(&scenario));
    say(&format!("[二(七)2] operator applied for scenario {} (一场景一审核)", scenario.id));
    let approve = DecisionRequest::new(Decision::Approve, "scope and columns are proportionate");
    agency
        .agency_review(&scenario.id, &crate::review_of(&scenario, Decision::Approve, "proportionate to the purpose"))
        .await?;
    let scenario = authority.authority_approve(&scenario.id, &approve).await?;
    say(&format!(
        "[二(七)2] agency reviewed it (a structured report: feasibility, the necessity of each dataset and column, the products' compliance); the authority approved; valid until {}",
        scenario.valid_until
    ));

    let mut manifest = inputs.manifest.clone();
    manifest.scenario = scenario.id.clone();
    let submission = sign_module(&actors.operator_key, &inputs.wasm, &manifest)?;
    let module = operator.submit_module(&submission).await?;
    seen.push(json(&module));
    say(&format!(
        "operator submitted module `{}` ({} bytes, SM3 {}…), SM2 signature verified",
        module.name,
        module.size_bytes,
        &module.id[..12]
    ));

    let budget = keyong_model::Loss::Zcdp { rho: inputs.rho };
    let job = operator.submit_job(&SubmitJob { module_id: module.id.clone(), budget }).await?;
    seen.push(json(&job));
    say(&format!("operator submitted job {} with ρ = {}; budget reserved", job.id, job.rho));
    let r1 = base.as_user(&actors.reviewers[0]);
    let r2 = base.as_user(&actors.reviewers[1]);
    let job = r1.wait_for_job(&job.id, Duration::from_secs(600)).await?;
    seen.push(json(&operator.job(&job.id).await?));
    if job.status != JobStatus::UnderReview {
        return Err(Error::Unexpected(format!("job ended {} instead of under_review", job.status)));
    }
    say(
        "[二(五)] sandbox ran the mapper once per privacy unit, each in a fresh instance; the host added DP noise; output sealed for review",
    );

    let queue = r1.review_queue().await?;
    if !queue.iter().any(|j| j.id == job.id) {
        return Err(Error::Unexpected("job missing from the review queue".into()));
    }
    let review = r1.review(&job.id).await?;
    say(&format!(
        "reviewer 1 sees {} cells, {} units ({} failed), {} suppressed below {} contributors",
        review.output.rows.len(),
        review.evidence.units_total,
        review.evidence.units_failed,
        review.evidence.suppressed_cells,
        review.evidence.min_contributors
    ));
    say(&format!(
        "[二(七)3] outbound checks (profile `{}` v{}, SM3 {}…): verdict {:?}, {} findings",
        review.report.profile,
        review.report.profile_version,
        &review.report.profile_hash[..12],
        review.report.verdict,
        review.report.findings.len()
    ));
    r1.vote(&job.id, &DecisionRequest::new(Decision::Approve, "aggregates only; noise as declared")).await?;
    let mut job = r2.vote(&job.id, &DecisionRequest::new(Decision::Approve, "agree")).await?;
    say(&format!("[二(七)3] two independent reviewers approved (blind to each other); job is {}", job.status));
    if job.status == JobStatus::AwaitingSignoff {
        job = authority.signoff(&job.id, &DecisionRequest::new(Decision::Approve, "重要 data: signed off")).await?;
        say(&format!("the output derives from 重要 data: the authority signed it off; job is {}", job.status));
    }
    seen.push(json(&operator.job(&job.id).await?));
    let period = job.decision_period_seconds;
    say(&format!("the operator sees the decision at the job's next slot of its release schedule (every {period} s)"));
    let shown = operator.wait_for_decision(&job.id, Duration::from_secs(2 * period + 60)).await?;
    if shown.status != JobStatus::Approved {
        return Err(Error::Unexpected(format!("the operator sees the job {} instead of approved", shown.status)));
    }

    let bundle = operator.release(&job.id).await?;
    verify_bundle(&bundle)?;
    say(&format!("[二(七)3] operator released the result; receipt {} is SM2-signed and verifies", bundle.receipt.id));
    if let Some(next_source) = &inputs.story {
        crate::story::run(&base, &actors, &entry, next_source, say).await?;
    }
    let audit = authority.verify_audit().await?;
    let checkpoint = audit.checkpoint_signature_hex.as_deref().unwrap_or_default();
    let message = keyong_crypto::audit::attestation_message(audit.entries, &audit.head_hash);
    keyong_crypto::verify(&audit.platform_public_key_hex, &message, checkpoint)?;
    say(&format!(
        "[二(七)] authority verified the SM3 audit chain ({} entries, ok = {}) and its SM2-signed checkpoint",
        audit.entries, audit.ok
    ));
    Ok(Outcome { actors, catalog: entry, scenario, module, job, review, bundle, audit, operator_responses: seen })
}

/// Renders a released table as aligned text.
pub fn render_table(t: &ResultTable) -> String {
    let mut header: Vec<String> = t.dimensions.clone();
    header.extend(t.columns.iter().cloned());
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            let mut cells = r.key.clone();
            cells.extend(r.values.iter().map(|v| v.map_or("suppressed".to_string(), |x| format!("{x:.1}"))));
            cells
        })
        .collect();
    // Display width: CJK and other wide characters take two columns.
    let width = |s: &str| s.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum::<usize>();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| std::iter::once(&header[i]).chain(rows.iter().map(|r| &r[i])).map(|s| width(s)).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c))))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = line(&header);
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}
