//! The catalog's procedures (二(三), 二(七)1) against the real server:
//! entries need the provider and the authority, every ingest is a version
//! (withdrawn before approval, retired when nothing needs it, pinned or
//! followed by scenarios), catalog update requests travel operator →
//! agency → authority → provider, and objections are answered and
//! resolved — each illegal step refused with its code, each filing made.

use keyong_client::{Client, walkthrough};
use keyong_model::api::{CreateOrg, CreateUser, IngestRequest};
use keyong_model::catalog::*;
use keyong_model::governance::{AuthorisationMode, Scope};
use keyong_model::{ErrorCode, Grade, Mode, OrgKind, Role};
use keyong_tests::TestServer;

use super::{code, electricity_scenario, filed};

fn ingest(source: &str, rho: Option<f64>) -> IngestRequest {
    IngestRequest { policy: "electricity_bills".into(), source: source.into(), rho_budget: rho, delta_budget: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_needs_its_provider_and_the_authority_and_every_ingest_is_a_version() {
    let server = TestServer::start().await;
    keyong_tests::write_next_electricity_feed(&server.data_root);
    let base = Client::new(&server.base);
    let actors = walkthrough::setup_actors(&base, &server.bootstrap_token, &mut |_| {}).await.unwrap();
    let (authority, agency, operator, provider) = (
        base.as_user(&actors.authority),
        base.as_user(&actors.agency),
        base.as_user(&actors.operator),
        base.as_user(&actors.provider),
    );
    let gas_org = authority.create_org(&CreateOrg { name: "gas".into(), kind: OrgKind::Provider }).await.unwrap();
    let user = CreateUser { org_id: gas_org.id, name: "g".into(), role: Role::Provider };
    let other_provider = base.as_user(&authority.create_user(&user).await.unwrap().token);

    // Registration: the provider only, valid names and fields.
    let mut entry = provider.entry_for_policy("electricity_bills", "energy").await.unwrap();
    let amount = entry.details.fields.pop().unwrap();
    assert_eq!(code(agency.register_entry(&entry).await), ErrorCode::Forbidden);
    assert_eq!(code(operator.register_entry(&entry).await), ErrorCode::Forbidden);
    let bad = RegisterEntry { name: "Electricity Bills".into(), ..entry.clone() };
    assert_eq!(code(provider.register_entry(&bad).await), ErrorCode::BadRequest);
    let mut twice = entry.clone();
    twice.details.fields.push(twice.details.fields[0].clone());
    assert_eq!(code(provider.register_entry(&twice).await), ErrorCode::BadRequest);
    let r = provider.register_entry(&entry).await.unwrap();
    assert_eq!(r.status, CatalogStatus::Proposed);
    assert_eq!(code(provider.register_entry(&entry).await), ErrorCode::Conflict);
    assert_eq!(code(provider.ingest(&ingest("electricity_bills.parquet", Some(4.0))).await), ErrorCode::InvalidState);

    // The authority refuses, the provider revises, the authority confirms (filed).
    let confirm = |grade| ConfirmEntry { grade, comment: String::new() };
    assert_eq!(code(provider.confirm_entry(&r.name, &confirm(Grade::General)).await), ErrorCode::Forbidden);
    let refused = authority.reject_entry(&r.name, &RejectEntry { reason: "describe the fields".into() }).await.unwrap();
    assert_eq!((refused.status, refused.rejection.as_deref()), (CatalogStatus::Rejected, Some("describe the fields")));
    assert_eq!(code(authority.confirm_entry(&r.name, &confirm(Grade::General)).await), ErrorCode::InvalidState);
    assert_eq!(code(other_provider.change_entry(&r.name, &entry.details).await), ErrorCode::Forbidden);
    provider.change_entry(&r.name, &entry.details).await.unwrap();
    let confirmed = authority.confirm_entry(&r.name, &confirm(Grade::Important)).await.unwrap();
    assert_eq!((confirmed.status, confirmed.grade), (CatalogStatus::Confirmed, Some(Grade::Important)));
    assert!(filed(&authority, "filing.catalog", &r.name).await);
    assert_eq!(code(authority.confirm_entry(&r.name, &confirm(Grade::General)).await), ErrorCode::InvalidState);

    // Ingest follows the entry: its grade, its fields, its provider.
    let first = ingest("electricity_bills.parquet", Some(4.0));
    assert_eq!(code(provider.ingest(&first).await), ErrorCode::PolicyDenied, "the policy grades it general");
    assert_eq!(code(other_provider.ingest(&first).await), ErrorCode::Forbidden);
    entry.details.fields.push(amount);
    provider.change_entry(&r.name, &entry.details).await.unwrap();
    assert_eq!(code(provider.change_entry(&r.name, &entry.details).await), ErrorCode::InvalidState, "one at a time");
    let changed = authority.confirm_entry(&r.name, &confirm(Grade::General)).await.unwrap();
    assert_eq!((changed.grade, changed.pending_change.is_none()), (Some(Grade::General), true));
    assert_eq!(code(provider.ingest(&ingest("electricity_bills.parquet", None)).await), ErrorCode::BadRequest);

    // Version 1 is withdrawn before approval: its file goes, its budget may be set again.
    let v1 = provider.ingest(&first).await.unwrap();
    assert_eq!((v1.seq, v1.status), (1, VersionStatus::Pending));
    assert_eq!(code(provider.ingest(&ingest("electricity_bills.csv", None)).await), ErrorCode::Conflict, "pending");
    let file = server.data_root.join(format!("datasets/electricity_bills/{}.parquet", v1.version));
    assert!(file.exists());
    assert_eq!(code(operator.withdraw_version(&v1.name, 1).await), ErrorCode::Forbidden);
    let withdrawn = provider.withdraw_version(&v1.name, 1).await.unwrap();
    assert_eq!(withdrawn.status, VersionStatus::Withdrawn);
    assert!(!file.exists(), "a withdrawn version's file is deleted");
    assert_eq!(code(provider.withdraw_version(&v1.name, 1).await), ErrorCode::InvalidState);
    assert_eq!(code(authority.approve_dataset(&v1.name).await), ErrorCode::InvalidState, "nothing pending");

    // Version 2, the same content again, approved (filed): the operator's scenario reads it.
    let v2 = agency.ingest(&ingest("electricity_bills.parquet", Some(4.0))).await.unwrap();
    assert_eq!((v2.seq, v2.version.as_str()), (2, v1.version.as_str()));
    assert_eq!(
        code(operator.apply_scenario(&electricity_scenario(&["district", "kwh"], None)).await),
        ErrorCode::InvalidState,
        "not approved"
    );
    let v2 = authority.approve_dataset(&v2.name).await.unwrap();
    assert_eq!(v2.status, VersionStatus::Active);
    assert!(filed(&authority, "filing.dataset_version", &v2.name).await);
    let followed = operator.apply_scenario(&electricity_scenario(&["district", "kwh"], None)).await.unwrap();
    assert_eq!(followed.datasets[0].version, None);

    // Version 3 from a CSV feed: lineage, its own source hash, the shared budget.
    let v3 = provider.ingest(&ingest("electricity_bills.csv", None)).await.unwrap();
    assert_eq!((v3.seq, v3.status, v3.budget.rho_total), (3, VersionStatus::Pending, 4.0));
    assert_eq!(
        code(operator.apply_scenario(&electricity_scenario(&["district", "kwh"], Some(v3.version.clone()))).await),
        ErrorCode::InvalidState
    );
    assert_eq!(operator.catalog().await.unwrap()[0].version, v2.version, "jobs read the approved version");
    authority.approve_dataset(&v3.name).await.unwrap();
    let versions = provider.versions(&v3.name).await.unwrap();
    let seqs: Vec<_> = versions.iter().map(|v| (v.seq, v.status)).collect();
    assert_eq!(
        seqs,
        [(3, VersionStatus::Active), (2, VersionStatus::Active), (1, VersionStatus::Withdrawn)],
        "newest first"
    );
    // Operators see the approved versions only, without the raw feed's name and hash.
    let seen = operator.versions(&v3.name).await.unwrap();
    assert_eq!(seen.iter().map(|v| v.seq).collect::<Vec<_>>(), [3, 2]);
    assert!(seen.iter().all(|v| v.source.is_empty() && v.source_sm3.is_empty() && v.ingested_by.is_empty()));
    assert_eq!(versions[0].parent.as_deref(), Some(v2.version.as_str()), "lineage skips the withdrawn one");
    assert_eq!((versions[0].source.as_str(), versions[1].parent.as_deref()), ("electricity_bills.csv", None));
    assert_ne!(versions[0].source_sm3, versions[1].source_sm3);
    assert_eq!(operator.catalog().await.unwrap()[0].version, v3.version);

    // A scenario that pins version 2 keeps it from retirement; the current one is never retired.
    let pinned =
        operator.apply_scenario(&electricity_scenario(&["district", "kwh"], Some(v2.version.clone()))).await.unwrap();
    assert_eq!(pinned.datasets[0].version.as_deref(), Some(v2.version.as_str()));
    assert_eq!(code(provider.retire_version(&v3.name, 2).await), ErrorCode::InvalidState, "pinned");
    assert_eq!(code(provider.retire_version(&v3.name, 3).await), ErrorCode::InvalidState, "current");
    assert_eq!(code(provider.retire_version(&v3.name, 9).await), ErrorCode::NotFound);
    let reject = keyong_client::review_of(&pinned, keyong_model::Decision::Reject, "not needed");
    agency.agency_review(&pinned.id, &reject).await.unwrap();
    let retired = provider.retire_version(&v3.name, 2).await.unwrap();
    assert_eq!(retired.status, VersionStatus::Retired);
    assert!(!server.data_root.join(format!("datasets/electricity_bills/{}.parquet", v2.version)).exists());
    assert_eq!(
        code(operator.apply_scenario(&electricity_scenario(&["district", "kwh"], Some(v2.version.clone()))).await),
        ErrorCode::InvalidState
    );

    // Re-graded by the authority, the data jobs read takes the higher grade (就高从严).
    provider.change_entry(&r.name, &entry.details).await.unwrap();
    authority.confirm_entry(&r.name, &confirm(Grade::Important)).await.unwrap();
    assert_eq!(operator.catalog().await.unwrap()[0].grade, Grade::Important);
    assert!(authority.verify_audit().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_update_request_reaches_the_provider_and_objections_are_answered_and_resolved() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (authority, agency, operator, provider, reviewer) = (
        base.as_user(&a.authority),
        base.as_user(&a.agency),
        base.as_user(&a.operator),
        base.as_user(&a.provider),
        base.as_user(&a.reviewers[0]),
    );
    let gas_org = authority.create_org(&CreateOrg { name: "gas".into(), kind: OrgKind::Provider }).await.unwrap();
    let user = CreateUser { org_id: gas_org.id.clone(), name: "g".into(), role: Role::Provider };
    let gas = base.as_user(&authority.create_user(&user).await.unwrap().token);

    // operator → agency → authority → provider, each step by its role only.
    let need = RequestData {
        title: "gas use".into(),
        description: "monthly household gas use".into(),
        purpose: "energy planning".into(),
        fields: vec!["district".into()],
    };
    assert_eq!(code(agency.request_data(&need).await), ErrorCode::Forbidden);
    let r = operator.request_data(&need).await.unwrap();
    assert_eq!(r.status, RequestStatus::Submitted);
    let pass = |provider_org: Option<String>| RouteRequest { accept: true, comment: "ok".into(), provider_org };
    assert_eq!(code(authority.assign_request(&r.id, &pass(Some(gas_org.id.clone()))).await), ErrorCode::InvalidState);
    assert_eq!(code(authority.forward_request(&r.id, &pass(None)).await), ErrorCode::Forbidden);
    assert_eq!(code(agency.forward_request(&r.id, &pass(Some(gas_org.id.clone()))).await), ErrorCode::BadRequest);
    agency.forward_request(&r.id, &pass(None)).await.unwrap();
    assert_eq!(code(agency.forward_request(&r.id, &pass(None)).await), ErrorCode::InvalidState);
    assert_eq!(code(authority.assign_request(&r.id, &pass(None)).await), ErrorCode::BadRequest);
    assert_eq!(code(authority.assign_request(&r.id, &pass(Some(a.operator_org.clone()))).await), ErrorCode::BadRequest);
    assert_eq!(code(gas.catalog_request(&r.id).await), ErrorCode::NotFound, "not yet sent to it");
    authority.assign_request(&r.id, &pass(Some(gas_org.id.clone()))).await.unwrap();
    let answer = |approve, entry| AnswerRequest { approve, reason: "we hold it".into(), entry };
    assert_eq!(
        code(provider.answer_request(&r.id, &answer(false, None)).await),
        ErrorCode::NotFound,
        "another provider"
    );
    assert_eq!(code(gas.answer_request(&r.id, &answer(true, None)).await), ErrorCode::BadRequest);
    let entry = gas.entry_for_policy("gas_bills", "energy").await.unwrap();
    let done = gas.answer_request(&r.id, &answer(true, Some(entry.clone()))).await.unwrap();
    assert_eq!((done.status, done.entry.as_deref()), (RequestStatus::Approved, Some(entry.name.as_str())));
    assert!(filed(&authority, "filing.catalog_request", &r.id).await);
    let record = gas.catalog_record(&entry.name).await.unwrap();
    assert_eq!((record.status, record.request.as_deref()), (CatalogStatus::Proposed, Some(r.id.as_str())));
    let seen = operator.catalog_request(&r.id).await.unwrap();
    assert_eq!(seen.status, RequestStatus::Approved);
    assert_eq!(
        seen.steps.iter().map(|s| s.role).collect::<Vec<_>>(),
        [Role::Operator, Role::Agency, Role::Authority, Role::Provider]
    );

    // A refusal's reason reaches the operator.
    let r2 = operator.request_data(&need).await.unwrap();
    let refuse =
        RouteRequest { accept: false, comment: "the catalog's gas_bills entry serves this".into(), provider_org: None };
    agency.forward_request(&r2.id, &refuse).await.unwrap();
    let seen = operator.catalog_request(&r2.id).await.unwrap();
    assert_eq!((seen.status, seen.reason.as_deref()), (RequestStatus::Rejected, Some(refuse.comment.as_str())));
    assert_eq!(code(reviewer.catalog_request(&r2.id).await), ErrorCode::NotFound);

    // An objection: raised by an entitled party, answered by the provider, resolved by the authority.
    let raise = |dataset: &str| RaiseDispute {
        dataset: dataset.into(),
        ground: ObjectionGround::Grade,
        text: "district and month single out households".into(),
    };
    assert_eq!(code(operator.object(&raise("nope")).await), ErrorCode::NotFound);
    assert_eq!(code(provider.object(&raise("electricity_bills")).await), ErrorCode::BadRequest, "its own entry");
    assert_eq!(code(reviewer.object(&raise("electricity_bills")).await), ErrorCode::Forbidden);
    let d = operator.object(&raise("electricity_bills")).await.unwrap();
    assert_eq!(d.status, DisputeStatus::Open);
    let resolve = ResolveDispute { upheld: true, reason: "grade it important".into() };
    assert_eq!(code(authority.resolve_dispute(&d.id, &resolve).await), ErrorCode::InvalidState, "unanswered");
    let reply = AnswerDispute { text: "outputs are protected".into() };
    assert_eq!(code(gas.answer_objection(&d.id, &reply).await), ErrorCode::NotFound, "not its dataset");
    provider.answer_objection(&d.id, &reply).await.unwrap();
    assert_eq!(code(provider.answer_objection(&d.id, &reply).await), ErrorCode::InvalidState);
    assert_eq!(code(provider.resolve_dispute(&d.id, &resolve).await), ErrorCode::Forbidden);
    authority.resolve_dispute(&d.id, &resolve).await.unwrap();
    assert!(filed(&authority, "filing.objection", &d.id).await);
    assert_eq!(operator.objection(&d.id).await.unwrap().status, DisputeStatus::Upheld);
    assert_eq!(code(gas.objection(&d.id).await), ErrorCode::NotFound, "a third party does not see it");

    // Authorisation modes (二(四)), all non-exclusive: a domain authorisation
    // covers the catalog entries of its domains, and the electricity data the
    // walkthrough's operator holds (a whole authorisation) is authorised again.
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(365))
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap();
    let modes = vec![Mode::Aggregate];
    for (name, domain, allowed) in [("运营机构 能源", "energy", true), ("运营机构 卫生", "health", false)] {
        let scope = Scope { datasets: vec![], domains: vec![domain.into()], modes: modes.clone() };
        let (org, agreement) =
            agency.admit_operator_with(name, &until, AuthorisationMode::Domain, scope).await.unwrap();
        assert_eq!(agreement.mode, AuthorisationMode::Domain);
        let user = CreateUser { org_id: org.id, name: "dev".into(), role: Role::Operator };
        let op = base.as_user(&agency.create_user(&user).await.unwrap().token);
        let applied = op.apply_scenario(&electricity_scenario(&["district", "kwh"], None)).await;
        match allowed {
            true => assert_eq!(applied.unwrap().datasets[0].name, "electricity_bills"),
            false => assert_eq!(code(applied), ErrorCode::PolicyDenied, "outside the health domain"),
        }
    }
    let v = authority.verify_audit().await.unwrap();
    assert!(v.ok, "{v:?}");
}
