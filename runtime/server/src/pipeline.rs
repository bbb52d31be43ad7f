//! The release pipelines, shared by the job runner and `keyong dev run`:
//! authorised view → (aggregate) the module per unit and the trusted DP
//! reducer, (blocks) the module per disjoint block of units and a DP mean,
//! (sql) DataFusion filter/projection and host-side bounding — then noise;
//! (reviewed) the module once over all authorised rows, no noise. Every run
//! also yields the release candidate for the outbound checks.

use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use keyong_check::{Candidate, CellEvidence, ValueKind};
use keyong_data::{AuthorisedView, SqlPlan, ViewTable};
use keyong_model::api::{Evidence, ModuleLog, NoiseInfo, ResultTable};
use keyong_model::{Column, ColumnValues, Grade, Loss, Manifest, Mode, UnitRows};
use keyong_privacy::{BlockAggregator, Reducer, Release, block_of, unit_seed};
use keyong_sandbox::{Job, NamedRows, Sandbox, World};

/// What a run produced: the table to review, the host's evidence, the sealed log.
#[derive(Debug, Serialize, Deserialize)]
pub struct Output {
    pub table: ResultTable,
    pub evidence: Evidence,
    pub logs: ModuleLog,
}

/// The noise a run of `manifest` at `budget` would add to each output: the
/// accuracy preview. Uses the same calibration as the release itself.
pub fn preview(manifest: &Manifest, budget: Loss) -> Result<Vec<NoiseInfo>, String> {
    let e = |e: keyong_privacy::Error| e.to_string();
    match manifest.mode {
        Mode::Aggregate => Ok(Reducer::plan(manifest, budget).map_err(e)?.into_iter().map(|p| p.info).collect()),
        Mode::Sql => SqlPlan::compile(manifest).map_err(|e| e.to_string())?.spec.preview(budget).map_err(e),
        Mode::Blocks => {
            let (lower, upper) = manifest.bounds();
            Ok(BlockAggregator::plan(&manifest.outputs, lower, upper, manifest.blocks, budget).map_err(e)?.1)
        }
        // No noise and no DP guarantee: the strictest outbound review instead.
        Mode::Reviewed => Ok(Vec::new()),
    }
}

/// A DP release as a candidate for the outbound checks: the noisy table,
/// the true contributor counts as evidence (for reviewers' information).
fn dp_candidate(manifest: &Manifest, output: &Output, grade: Grade) -> Candidate {
    let t = &output.table;
    let kinds = t
        .columns
        .iter()
        .map(|c| match (manifest.mode, c.as_str()) {
            (Mode::Aggregate, "count") => ValueKind::Count,
            (Mode::Aggregate, "sum") => ValueKind::Sum,
            (Mode::Aggregate, "mean") => ValueKind::Mean,
            _ => ValueKind::Other,
        })
        .collect();
    let evidence = if output.evidence.contributors.len() == t.rows.len() {
        let empty = vec![None; t.columns.len()];
        output
            .evidence
            .contributors
            .iter()
            .map(|&n| CellEvidence { contributors: n, values: empty.clone(), units: vec![] })
            .collect()
    } else {
        Vec::new()
    };
    Candidate {
        table: t.clone(),
        kinds,
        evidence,
        integers: vec![],
        domain: vec![],
        absent: vec![],
        units_total: output.evidence.units_total,
        dp: true,
        grade,
    }
}

/// One run of a module (or sql query) over one dataset version.
pub struct Run {
    pub sandbox: Arc<Sandbox>,
    /// The dataset version and the columns the module reads.
    pub table: ViewTable,
    pub manifest: Manifest,
    /// SM3 of the module (its cache key) and its bytes (empty in sql mode).
    pub module_id: String,
    pub wasm: Vec<u8>,
    pub budget: Loss,
    pub min_contributors: u64,
    pub view_memory_bytes: usize,
    /// The grade of the output (the highest of its inputs), for the candidate.
    pub grade: Grade,
    /// Seeds the module's randomness (a unit gets [`unit_seed`] of its own
    /// digest, block `i` of the declared blocks gets `seed + i`), the block
    /// assignment and the bounding hashes.
    pub seed: u64,
    /// The sandbox's view of the job ([`job`]): its fuel, its log, and the
    /// flag whoever ends the job sets to stop the module at once.
    pub job: Arc<Job>,
    /// Wall-clock bound of the sandbox work, from public quantities only
    /// (the server passes the job's schedule period): every call is bounded
    /// by its fuel, so only a machine slower than the schedule assumes
    /// reaches it.
    pub backstop: Duration,
}

/// The sandbox job for a run of `manifest`: the module's declared fuel per
/// call (where set) and the sandbox's log cap.
pub fn job(sandbox: &Sandbox, manifest: &Manifest) -> Arc<Job> {
    let fuel = (manifest.fuel_per_call > 0).then_some(manifest.fuel_per_call);
    Job::new(fuel, sandbox.limits().log_bytes_per_job)
}

impl Run {
    /// Runs the pipeline over the datasets under `datasets`: the output for
    /// reviewers and the candidate for the outbound checks. Errors are for
    /// the platform's eyes only: they may depend on the data.
    pub async fn run(self, datasets: &Dir) -> Result<(Output, Candidate), String> {
        let (manifest, grade) = (self.manifest.clone(), self.grade);
        let reviewed = manifest.mode == Mode::Reviewed;
        let (output, candidate) = self.run_mode(datasets).await?;
        match candidate {
            Some(c) if reviewed => Ok((output, c)),
            _ => {
                let c = dp_candidate(&manifest, &output, grade);
                Ok((output, c))
            }
        }
    }

    async fn run_mode(self, datasets: &Dir) -> Result<(Output, Option<Candidate>), String> {
        let view = AuthorisedView::open(datasets, vec![self.table.clone()], self.view_memory_bytes)
            .map_err(|e| e.to_string())?;
        if self.manifest.mode == Mode::Sql {
            let plan = SqlPlan::compile(&self.manifest).map_err(|e| e.to_string())?;
            let accumulate = plan.accumulate(&view, &self.manifest.input, self.seed);
            let cancelled = async {
                while !self.job.is_cancelled() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            // Dropping the query's future stops DataFusion's work.
            let grouped = tokio::select! {
                done = tokio::time::timeout(self.backstop, accumulate) => done
                    .map_err(|_| format!("the query did not finish within {:?}", self.backstop))?
                    .map_err(|e| e.to_string())?,
                () = cancelled => return Err("the job was cancelled while it ran".into()),
            };
            let release = tokio::task::spawn_blocking(move || grouped.release(self.budget, self.min_contributors))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            return Ok((Output { table: release.table, evidence: release.evidence, logs: ModuleLog::default() }, None));
        }
        let units = view.units(&self.manifest.input, &self.manifest.columns).await.map_err(|e| e.to_string())?;
        // Every call is bounded by its fuel (deterministic) and, as a
        // backstop, its epoch deadline, so the job's work is bounded by public
        // quantities: calls × the per-call limit. This outer timeout follows
        // from them too and can only fire when the platform itself misbehaves.
        let (backstop, job) = (self.backstop, self.job.clone());
        let work = tokio::task::spawn_blocking(move || {
            if self.manifest.mode == Mode::Reviewed {
                self.run_reviewed(units).map(|(o, c)| (o, Some(c)))
            } else {
                self.run_module(units).map(|o| (o, None))
            }
        });
        let outcome = match tokio::time::timeout(backstop, work).await {
            Ok(joined) => joined.map_err(|e| e.to_string())?,
            Err(_) => Err(format!("the job did not finish within {backstop:?}")),
        };
        // Whatever ended the run, nothing of it keeps running.
        job.cancel();
        outcome
    }

    /// Fails a run whose job was cancelled while it ran: its output would
    /// be that of a partial run.
    fn not_cancelled(&self) -> Result<(), String> {
        if self.job.is_cancelled() { Err("the job was cancelled while it ran".into()) } else { Ok(()) }
    }

    /// Reviewed mode: the module once over every authorised row (no unit
    /// column: it cannot print pseudonyms), then the host's own evidence.
    fn run_reviewed(self, units: Vec<(u64, UnitRows)>) -> Result<(Output, Candidate), String> {
        let sandbox = &self.sandbox;
        let prepared =
            sandbox.prepare_accepted(&self.module_id, &self.wasm, World::Reviewed).map_err(|e| e.to_string())?;
        let rows = concat(&self.manifest.columns, units.iter().map(|(_, u)| u.clone()).collect());
        let tables = vec![NamedRows { name: self.manifest.input.clone(), rows }];
        let out = sandbox
            .transform(&prepared, tables, self.seed, &self.job)
            .map_err(|e| format!("the module failed: {e:?}"))?;
        let candidate = keyong_check::reviewed_candidate(&self.manifest, &units, &out, self.grade)?;
        let evidence = Evidence {
            units_total: units.len() as u64,
            contributors: candidate.evidence.iter().map(|e| e.contributors).collect(),
            ..Evidence::default()
        };
        Ok((Output { table: candidate.table.clone(), evidence, logs: self.job.take_log() }, candidate))
    }

    fn run_module(self, units: Vec<(u64, UnitRows)>) -> Result<Output, String> {
        let sandbox = &self.sandbox;
        let world = if self.manifest.mode == Mode::Blocks { World::Blocks } else { World::Aggregate };
        let prepared = sandbox.prepare_accepted(&self.module_id, &self.wasm, world).map_err(|e| e.to_string())?;
        let job = &self.job;
        let release: Release = if self.manifest.mode == Mode::Blocks {
            let k = self.manifest.blocks;
            let mut blocks: Vec<Vec<UnitRows>> = vec![Vec::new(); k as usize];
            for (digest, rows) in units {
                blocks[block_of(digest, self.seed, k)].push(rows);
            }
            let (lower, upper) = self.manifest.bounds();
            let mut agg = BlockAggregator::new(self.manifest.outputs.clone(), lower, upper, k);
            for (i, block) in blocks.into_iter().enumerate() {
                let n = block.len() as u64;
                let rows = concat(&self.manifest.columns, block);
                let out = sandbox.map_block(&prepared, rows, self.seed.wrapping_add(i as u64), job).ok();
                agg.add_block(n, out.as_deref());
            }
            agg.release(self.budget)
        } else {
            let mut reducer = Reducer::new(&self.manifest);
            for (digest, unit) in units {
                // A failed call (fuel, trap, limit) drops this unit only.
                match sandbox.map_unit(&prepared, unit, unit_seed(self.seed, digest), job) {
                    Ok(emits) => reducer.add_unit(&emits),
                    Err(_) => reducer.unit_failed(),
                }
            }
            reducer.release(self.budget, self.min_contributors)
        }
        .map_err(|e| e.to_string())?;
        self.not_cancelled()?;
        Ok(Output { table: release.table, evidence: release.evidence, logs: self.job.take_log() })
    }
}

/// The rows of several units as one table (a block), columns in `names` order.
fn concat(names: &[String], units: Vec<UnitRows>) -> UnitRows {
    let mut columns: Vec<Column> = Vec::new();
    let mut num_rows = 0;
    for unit in units {
        num_rows += unit.num_rows;
        for (i, c) in unit.columns.into_iter().enumerate() {
            match columns.get_mut(i) {
                None => columns.push(c),
                Some(acc) => match (&mut acc.values, c.values) {
                    (ColumnValues::Int64(a), ColumnValues::Int64(b)) => a.extend(b),
                    (ColumnValues::Float64(a), ColumnValues::Float64(b)) => a.extend(b),
                    (ColumnValues::Utf8(a), ColumnValues::Utf8(b)) => a.extend(b),
                    (ColumnValues::Boolean(a), ColumnValues::Boolean(b)) => a.extend(b),
                    // One view, one schema: every unit's column has the same type.
                    _ => unreachable!("units of one view share their column types"),
                },
            }
        }
    }
    if columns.is_empty() {
        // An empty block still has the declared columns (typed by the first
        // unit when there is one; an empty block has none to type them by).
        columns = names.iter().map(|n| Column { name: n.clone(), values: ColumnValues::Utf8(vec![]) }).collect();
    }
    UnitRows { num_rows, columns }
}
