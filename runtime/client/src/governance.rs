//! The operator life cycle's endpoints (二(六)), and [`Client::admit_operator`],
//! the whole admission procedure as an agency runs it.

use reqwest::Method;

use keyong_model::api::{CreateOrg, Org};
use keyong_model::governance::*;
use keyong_model::{Mode, OrgKind};

use crate::{Client, Result};

impl Client {
    pub async fn announce_admission(&self, req: &AnnounceAdmission) -> Result<Admission> {
        self.call(Method::POST, "/v1/admissions", Some(req)).await
    }
    pub async fn admission(&self, id: &str) -> Result<Admission> {
        self.call(Method::GET, &format!("/v1/admissions/{id}"), None::<&()>).await
    }
    pub async fn record_application(&self, id: &str, req: &Application) -> Result<Admission> {
        self.call(Method::POST, &format!("/v1/admissions/{id}/applications"), Some(req)).await
    }
    pub async fn evaluate(&self, id: &str, req: &Evaluation) -> Result<Admission> {
        self.call(Method::POST, &format!("/v1/admissions/{id}/evaluation"), Some(req)).await
    }
    pub async fn publicise(&self, id: &str, req: &Publicity) -> Result<Admission> {
        self.call(Method::POST, &format!("/v1/admissions/{id}/publicity"), Some(req)).await
    }
    pub async fn record_objection(&self, id: &str, req: &RaiseObjection) -> Result<Admission> {
        self.call(Method::POST, &format!("/v1/admissions/{id}/objections"), Some(req)).await
    }
    pub async fn resolve_objection(&self, id: &str, n: usize, req: &ResolveObjection) -> Result<Admission> {
        self.call(Method::POST, &format!("/v1/admissions/{id}/objections/{n}/resolve"), Some(req)).await
    }
    pub async fn sign_agreement(&self, req: &SignAgreement) -> Result<Agreement> {
        self.call(Method::POST, "/v1/agreements", Some(req)).await
    }
    pub async fn agreement(&self, id: &str) -> Result<Agreement> {
        self.call(Method::GET, &format!("/v1/agreements/{id}"), None::<&()>).await
    }
    pub async fn request_renewal(&self, id: &str, req: &RequestRenewal) -> Result<Agreement> {
        self.call(Method::POST, &format!("/v1/agreements/{id}/renewal-request"), Some(req)).await
    }
    pub async fn renew(&self, id: &str, req: &Renew) -> Result<Agreement> {
        self.call(Method::POST, &format!("/v1/agreements/{id}/renew"), Some(req)).await
    }
    pub async fn request_termination(&self, id: &str, req: &RequestTermination) -> Result<Agreement> {
        self.call(Method::POST, &format!("/v1/agreements/{id}/termination-request"), Some(req)).await
    }
    pub async fn propose_termination(&self, id: &str, req: &ProposeTermination) -> Result<Agreement> {
        self.call(Method::POST, &format!("/v1/agreements/{id}/termination-proposal"), Some(req)).await
    }
    pub async fn decide_termination(&self, id: &str, req: &DecideTermination) -> Result<Agreement> {
        self.call(Method::POST, &format!("/v1/agreements/{id}/termination"), Some(req)).await
    }
    /// The deletion record of an exited operator: `record`, `record_json`
    /// (what was hashed) and `record_sm3`.
    pub async fn exit_record(&self, org: &str) -> Result<serde_json::Value> {
        self.call(Method::GET, &format!("/v1/orgs/{org}/exit"), None::<&()>).await
    }

    /// The agency admits a new operator organisation `name` by the whole
    /// procedure (二(六)1): announcement, its application, the evaluation,
    /// two seconds of publicity without objection (the server's
    /// `governance.min_publicity` must allow it: the demo and the tests set
    /// it so), and the agreement, passed by the agency's collective decision
    /// and filed — a whole authorisation of every mode, ending on `until`
    /// (YYYY-MM-DD).
    pub async fn admit_operator(&self, name: &str, until: &str) -> Result<(Org, Agreement)> {
        let scope = Scope {
            datasets: Vec::new(),
            domains: Vec::new(),
            modes: vec![Mode::Aggregate, Mode::Blocks, Mode::Sql, Mode::Reviewed],
        };
        self.admit_operator_with(name, until, AuthorisationMode::Whole, scope).await
    }

    /// [`Client::admit_operator`] with another authorisation mode and scope (二(四)).
    pub async fn admit_operator_with(
        &self,
        name: &str,
        until: &str,
        mode: AuthorisationMode,
        scope: Scope,
    ) -> Result<(Org, Agreement)> {
        let org = self.create_org(&CreateOrg { name: name.into(), kind: OrgKind::Operator }).await?;
        let announcement = Announcement {
            mode,
            scope: "the city's public data catalog (全市公共数据资源目录)".into(),
            conditions: "data processing capability, good credit, security protection (二(六)1)".into(),
            criteria: "technical plan 40%, security 40%, business plan 20%".into(),
        };
        let req = AnnounceAdmission { procedure: SelectionProcedure::PublicTender, announcement };
        let admission = self.announce_admission(&req).await?;
        let materials_sm3 = keyong_crypto::sm3_hex(format!("application materials of {name}").as_bytes());
        self.record_application(&admission.id, &Application { org_id: org.id.clone(), materials_sm3 }).await?;
        let evaluation = Evaluation { selected: org.id.clone(), report: format!("{name} ranks first") };
        self.evaluate(&admission.id, &evaluation).await?;
        let publicity_ends = crate::now() + time::Duration::seconds(2);
        let until_text = publicity_ends.format(&time::format_description::well_known::Rfc3339).expect("formattable");
        self.publicise(&admission.id, &Publicity { until: until_text }).await?;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let today = crate::now().date().format(time::macros::format_description!("[year]-[month]-[day]"));
        let decision = CollectiveDecision {
            meeting: "实施机构“三重一大”决策会议".into(),
            date: today.expect("formattable"),
            resolution: format!("agreed to sign the authorisation agreement with {name}"),
        };
        let sign = SignAgreement {
            admission: admission.id,
            until: until.into(),
            scope,
            targets: vec!["two data products a year".into()],
            decision,
        };
        let agreement = self.sign_agreement(&sign).await?;
        Ok((org, agreement))
    }
}
