//! The rest of the plan's story, after the walkthrough's release, for
//! `cargo xtask demo`: a catalog update request (二(七)1) that ends with a
//! new entry, an objection to an entry answered and resolved, the next
//! version of the dataset (and the retirement of the first), and a second
//! operator's renewal (二(六)2) and exit (二(六)3).

use keyong_model::api::{CatalogEntry, CreateOrg, CreateUser, IngestRequest};
use keyong_model::catalog::*;
use keyong_model::governance::*;
use keyong_model::{ErrorCode, OrgKind, Role};

use crate::walkthrough::Actors;
use crate::{Client, Error, Result};

fn date(d: time::Date) -> String {
    d.format(time::macros::format_description!("[year]-[month]-[day]")).expect("formattable")
}

fn decision(resolution: &str) -> CollectiveDecision {
    CollectiveDecision {
        meeting: "实施机构“三重一大”决策会议".into(),
        date: date(crate::now().date()),
        resolution: resolution.into(),
    }
}

/// Runs the story; `next_source` is a second raw feed of `entry`'s dataset
/// in the landing zone.
pub async fn run(
    base: &Client,
    actors: &Actors,
    entry: &CatalogEntry,
    next_source: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let (authority, agency, operator, provider) = (
        base.as_user(&actors.authority),
        base.as_user(&actors.agency),
        base.as_user(&actors.operator),
        base.as_user(&actors.provider),
    );

    // A catalog update request: operator → agency → authority → a provider.
    let gas_org =
        authority.create_org(&CreateOrg { name: "市燃气集团 City Gas Group".into(), kind: OrgKind::Provider }).await?;
    let user = CreateUser { org_id: gas_org.id.clone(), name: "gas data steward".into(), role: Role::Provider };
    let gas = base.as_user(&authority.create_user(&user).await?.token);
    let need = RequestData {
        title: "居民燃气用量 Household gas use".into(),
        description: "Monthly gas use per household, by district, to plan heating capacity with electricity use."
            .into(),
        purpose: "District energy planning (公共治理)".into(),
        fields: vec!["district".into(), "month".into(), "cubic_metres".into()],
    };
    let request = operator.request_data(&need).await?;
    let route = |comment: &str, provider_org: Option<String>| RouteRequest {
        accept: true,
        comment: comment.into(),
        provider_org,
    };
    agency.forward_request(&request.id, &route("not in the catalog; needed for the energy scenario", None)).await?;
    authority.assign_request(&request.id, &route("the gas group holds this data", Some(gas_org.id.clone()))).await?;
    let registered = gas.entry_for_policy("gas_bills", "energy").await?;
    let answer = AnswerRequest { approve: true, reason: "we can supply it monthly".into(), entry: Some(registered) };
    let request = gas.answer_request(&request.id, &answer).await?;
    let name = request.entry.clone().unwrap_or_default();
    let grade = gas.catalog_record(&name).await?.details.proposed_grade;
    authority.confirm_entry(&name, &ConfirmEntry { grade, comment: "joins the catalog".into() }).await?;
    let seen = operator.catalog_request(&request.id).await?;
    say(&format!(
        "[二(七)1] catalog update request: operator → agency → authority → `{}`, which approved it; entry `{name}` joined the catalog once confirmed (filed), for every later scenario (一次授权、重复可用); the operator sees `{}`",
        gas_org.name, seen.status
    ));

    // An objection to the walkthrough's entry.
    let objection = RaiseDispute {
        dataset: entry.name.clone(),
        ground: ObjectionGround::Desensitisation,
        text: "Months with a single bill per district could single out a household.".into(),
    };
    let d = operator.object(&objection).await?;
    let answer = AnswerDispute { text: "Outputs are DP or reviewed with a contributor threshold; months stay.".into() };
    provider.answer_objection(&d.id, &answer).await?;
    let resolve = ResolveDispute { upheld: false, reason: "the outbound checks cover the risk".into() };
    authority.resolve_dispute(&d.id, &resolve).await?;
    let d = operator.objection(&d.id).await?;
    say(&format!(
        "[二(七)1] objection (异议) to `{}`'s desensitisation: the provider answered, the authority resolved it (filed); the operator sees `{}`",
        entry.name, d.status
    ));

    // The dataset's next version, from a CSV feed, and the first one retired.
    let next =
        IngestRequest { policy: entry.name.clone(), source: next_source.into(), rho_budget: None, delta_budget: None };
    let v2 = provider.ingest(&next).await?;
    let v2 = authority.approve_dataset(&v2.name).await?;
    let retired = provider.retire_version(&entry.name, entry.seq).await?;
    say(&format!(
        "[二(三)] provider ingested `{next_source}` as version {} of `{}` ({} rows, lineage {}… → {}…); the authority approved it (filed); version {} was retired, its file deleted; the budget stays the dataset's (ρ = {})",
        v2.seq,
        v2.name,
        v2.row_count,
        &entry.version[..12],
        &v2.version[..12],
        retired.seq,
        v2.budget.rho_total
    ));

    // A second operator, near the end of its term: renewal, then exit.
    let until = crate::now().date() + time::Duration::days(60);
    let (org, agreement) = agency.admit_operator("运营机构 Harbour Analytics Ltd.", &date(until)).await?;
    let staff = agency
        .create_user(&CreateUser { org_id: org.id.clone(), name: "analyst".into(), role: Role::Operator })
        .await?;
    let second = base.as_user(&staff.token);
    let renewal = RequestRenewal { until: date(until + time::Duration::days(730)) };
    second.request_renewal(&agreement.id, &renewal).await?;
    let renewed = agency.renew(&agreement.id, &Renew { grant: true, decision: decision("renewal granted") }).await?;
    say(&format!(
        "[二(六)2] `{}` applied for renewal in the last 3 months of its term; the agency granted it by collective decision (filed): in force until {}",
        org.name, renewed.until
    ));
    let ask =
        RequestTermination { reason: "business refocus".into(), liability: "pays the agreed early-exit fee".into() };
    second.request_termination(&agreement.id, &ask).await?;
    let decide = DecideTermination { terminate: true, comment: "accepted with the liability recorded".into() };
    agency.decide_termination(&agreement.id, &decide).await?;
    let refused = second.me().await.err().and_then(|e| e.code());
    if refused != Some(ErrorCode::Unauthenticated) {
        return Err(Error::Unexpected("an exited operator's token still works".into()));
    }
    let record = authority.exit_record(&org.id).await?;
    let sm3 = record["record_sm3"].as_str().unwrap_or_default();
    say(&format!(
        "[二(六)3] `{}` ended its agreement early (liability recorded) and exited at once: its tokens are refused, its jobs cancelled, its modules and outputs deleted; deletion record SM3 {}… (filed)",
        org.name,
        &sm3[..sm3.len().min(12)]
    ));
    Ok(())
}
