//! The catalog's endpoints (二(三), 二(七)1): entries, dataset versions,
//! catalog update requests and objections; and [`Client::catalog_dataset`],
//! a provider's dataset from registration to its first approved version.

use reqwest::Method;

use keyong_model::api::{CatalogEntry, IngestRequest};
use keyong_model::catalog::*;

use crate::{Client, Result};

impl Client {
    pub async fn register_entry(&self, req: &RegisterEntry) -> Result<CatalogRecord> {
        self.call(Method::POST, "/v1/catalog", Some(req)).await
    }
    pub async fn catalog_record(&self, name: &str) -> Result<CatalogRecord> {
        self.call(Method::GET, &format!("/v1/catalog/{name}"), None::<&()>).await
    }
    pub async fn change_entry(&self, name: &str, req: &EntryDetails) -> Result<CatalogRecord> {
        self.call(Method::POST, &format!("/v1/catalog/{name}/changes"), Some(req)).await
    }
    pub async fn confirm_entry(&self, name: &str, req: &ConfirmEntry) -> Result<CatalogRecord> {
        self.call(Method::POST, &format!("/v1/catalog/{name}/confirm"), Some(req)).await
    }
    pub async fn reject_entry(&self, name: &str, req: &RejectEntry) -> Result<CatalogRecord> {
        self.call(Method::POST, &format!("/v1/catalog/{name}/reject"), Some(req)).await
    }
    pub async fn dataset_policy(&self, name: &str) -> Result<PolicyView> {
        self.call(Method::GET, &format!("/v1/policies/datasets/{name}"), None::<&()>).await
    }
    pub async fn versions(&self, name: &str) -> Result<Vec<DatasetVersion>> {
        self.all(&format!("/v1/datasets/{name}/versions")).await
    }
    pub async fn withdraw_version(&self, name: &str, seq: u32) -> Result<DatasetVersion> {
        self.call(Method::POST, &format!("/v1/datasets/{name}/versions/{seq}/withdraw"), None::<&()>).await
    }
    pub async fn retire_version(&self, name: &str, seq: u32) -> Result<DatasetVersion> {
        self.call(Method::POST, &format!("/v1/datasets/{name}/versions/{seq}/retire"), None::<&()>).await
    }
    pub async fn request_data(&self, req: &RequestData) -> Result<CatalogRequest> {
        self.call(Method::POST, "/v1/catalog-requests", Some(req)).await
    }
    pub async fn catalog_request(&self, id: &str) -> Result<CatalogRequest> {
        self.call(Method::GET, &format!("/v1/catalog-requests/{id}"), None::<&()>).await
    }
    pub async fn forward_request(&self, id: &str, req: &RouteRequest) -> Result<CatalogRequest> {
        self.call(Method::POST, &format!("/v1/catalog-requests/{id}/forward"), Some(req)).await
    }
    pub async fn assign_request(&self, id: &str, req: &RouteRequest) -> Result<CatalogRequest> {
        self.call(Method::POST, &format!("/v1/catalog-requests/{id}/assign"), Some(req)).await
    }
    pub async fn answer_request(&self, id: &str, req: &AnswerRequest) -> Result<CatalogRequest> {
        self.call(Method::POST, &format!("/v1/catalog-requests/{id}/answer"), Some(req)).await
    }
    pub async fn object(&self, req: &RaiseDispute) -> Result<Dispute> {
        self.call(Method::POST, "/v1/objections", Some(req)).await
    }
    pub async fn objection(&self, id: &str) -> Result<Dispute> {
        self.call(Method::GET, &format!("/v1/objections/{id}"), None::<&()>).await
    }
    pub async fn answer_objection(&self, id: &str, req: &AnswerDispute) -> Result<Dispute> {
        self.call(Method::POST, &format!("/v1/objections/{id}/answer"), Some(req)).await
    }
    pub async fn resolve_dispute(&self, id: &str, req: &ResolveDispute) -> Result<Dispute> {
        self.call(Method::POST, &format!("/v1/objections/{id}/resolve"), Some(req)).await
    }

    /// The entry a provider registers for the dataset `policy` desensitises:
    /// one field per column the policy writes, in `domain`.
    pub async fn entry_for_policy(&self, policy: &str, domain: &str) -> Result<RegisterEntry> {
        let p = self.dataset_policy(policy).await?;
        let fields = p
            .columns
            .iter()
            .filter_map(|c| c.output.as_ref().map(|o| (o, c)))
            .map(|(o, c)| Field {
                name: o.clone(),
                description: format!("{} ({}, from `{}`)", c.tag, c.transform, c.name),
            })
            .collect();
        Ok(RegisterEntry {
            name: p.name,
            details: EntryDetails {
                title: p.title.clone(),
                description: format!("{} — as desensitised by policy `{policy}`", p.title),
                domain: domain.into(),
                fields,
                proposed_grade: p.grade,
                update_frequency: UpdateFrequency::Monthly,
            },
        })
    }

    /// A provider's dataset from nothing to its first approved version: the
    /// provider (`self`) registers the entry, the `authority` confirms it
    /// with the grade proposed (filed), the provider ingests with the
    /// budget, and the authority approves the version (filed).
    pub async fn catalog_dataset(
        &self,
        authority: &Client,
        ingest: &IngestRequest,
        domain: &str,
    ) -> Result<CatalogEntry> {
        let entry = self.entry_for_policy(&ingest.policy, domain).await?;
        let (name, grade) = (entry.name.clone(), entry.details.proposed_grade);
        self.register_entry(&entry).await?;
        authority.confirm_entry(&name, &ConfirmEntry { grade, comment: "grade as proposed".into() }).await?;
        self.ingest(ingest).await?;
        authority.approve_dataset(&name).await
    }
}
