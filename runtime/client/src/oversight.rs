//! Oversight's endpoints (二(七)2–4, 二(一)): scenario review reports,
//! incidents, supervision and the consent registry; and [`review_of`], a
//! review report that assesses every dataset and column an application asks for.

use reqwest::Method;

use keyong_model::Decision;
use keyong_model::api::{Scenario, ScenarioDataset};
use keyong_model::oversight::*;

use crate::{Client, Result};

/// A review report with `decision` that assesses each dataset and column
/// of `scenario` with `note` (a test or demo's stand-in for the agency's
/// own words).
pub fn review_of(scenario: &Scenario, decision: Decision, note: &str) -> ScenarioReview {
    let dataset = |d: &ScenarioDataset| DatasetNecessity {
        name: d.name.clone(),
        necessity: format!("{}: {note}", d.name),
        columns: d
            .columns
            .iter()
            .map(|c| ColumnNecessity { name: c.clone(), necessity: format!("`{c}` is needed: {note}") })
            .collect(),
    };
    ScenarioReview {
        decision,
        feasibility: format!("feasible as planned: {note}"),
        datasets: scenario.datasets.iter().map(dataset).collect(),
        products: format!("aggregate products only: {note}"),
        comment: note.into(),
    }
}

impl Client {
    /// The agency's structured review of a scenario application.
    pub async fn agency_review(&self, id: &str, req: &ScenarioReview) -> Result<Scenario> {
        self.call(Method::POST, &format!("/v1/scenarios/{id}/review"), Some(req)).await
    }
    pub async fn raise_incident(&self, req: &RaiseIncident) -> Result<Incident> {
        self.call(Method::POST, "/v1/incidents", Some(req)).await
    }
    pub async fn incidents(&self) -> Result<Vec<Incident>> {
        self.all("/v1/incidents").await
    }
    pub async fn incident(&self, id: &str) -> Result<Incident> {
        self.call(Method::GET, &format!("/v1/incidents/{id}"), None::<&()>).await
    }
    pub async fn stop_incident(&self, id: &str) -> Result<Incident> {
        self.call(Method::POST, &format!("/v1/incidents/{id}/stop"), None::<&()>).await
    }
    pub async fn incident_opinion(&self, id: &str, req: &AddOpinion) -> Result<Incident> {
        self.call(Method::POST, &format!("/v1/incidents/{id}/opinions"), Some(req)).await
    }
    pub async fn assess_incident(&self, id: &str, req: &Assess) -> Result<Incident> {
        self.call(Method::POST, &format!("/v1/incidents/{id}/assessment"), Some(req)).await
    }
    pub async fn decide_incident(&self, id: &str, req: &DecideIncident) -> Result<Incident> {
        self.call(Method::POST, &format!("/v1/incidents/{id}/decision"), Some(req)).await
    }
    pub async fn draw_sample(&self, size: u32) -> Result<Vec<Supervision>> {
        self.call(Method::POST, "/v1/supervision/samples", Some(&DrawSample { size })).await
    }
    pub async fn supervision(&self, id: &str) -> Result<Supervision> {
        self.call(Method::GET, &format!("/v1/supervision/{id}"), None::<&()>).await
    }
    pub async fn record_finding(&self, id: &str, req: &RecordFinding) -> Result<Supervision> {
        self.call(Method::POST, &format!("/v1/supervision/{id}/finding"), Some(req)).await
    }
    pub async fn supervision_stats(&self) -> Result<SupervisionStats> {
        self.call(Method::GET, "/v1/supervision/stats", None::<&()>).await
    }
    pub async fn record_consent(&self, dataset: &str, req: &RecordConsent) -> Result<ConsentRecord> {
        self.call(Method::POST, &format!("/v1/datasets/{dataset}/consents"), Some(req)).await
    }
    pub async fn consent_summary(&self, dataset: &str) -> Result<ConsentSummary> {
        self.call(Method::GET, &format!("/v1/datasets/{dataset}/consents"), None::<&()>).await
    }
}
