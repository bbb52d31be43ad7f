//! The release pipelines, one per mode:
//! authorised view → (aggregate) the module per unit and the trusted DP
//! reducer, (blocks) the module per disjoint block of units and a DP mean,
//! (sql) DataFusion filter/projection and host-side bounding — then noise;
//! (reviewed) the module once over all authorised rows, no noise. Every run
//! also yields the release candidate for the outbound checks.

use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info_span};

use keyong_check::{Candidate, CellEvidence, ValueKind};
use keyong_data::{AuthorisedView, SqlPlan};
use keyong_model::api::{Evidence, ModuleLog, NoiseInfo, ResultTable};
use keyong_model::{Column, ColumnValues, Grade, Loss, Manifest, Mode, UnitRows};
use keyong_privacy::{BlockAggregator, Reducer, Release, block_of, unit_seed};
use keyong_sandbox::{Job, NamedRows, Sandbox, World};

use crate::{Engine, Error, JobSpec, Result, RunSettings};

/// What a run produced: the table to review, the host's evidence, the sealed log.
#[derive(Debug, Serialize, Deserialize)]
pub struct Output {
    pub table: ResultTable,
    pub evidence: Evidence,
    pub logs: ModuleLog,
}

/// The noise a run of `manifest` at `budget` would add to each output: the
/// accuracy preview. Uses the same calibration as the release itself.
pub fn preview(manifest: &Manifest, budget: Loss) -> Result<Vec<NoiseInfo>> {
    Ok(match manifest.mode {
        Mode::Aggregate => Reducer::plan(manifest, budget)?.into_iter().map(|p| p.info).collect(),
        Mode::Sql => SqlPlan::compile(manifest)?.spec.preview(budget)?,
        Mode::Blocks => {
            let (lower, upper) = manifest.bounds();
            BlockAggregator::plan(&manifest.outputs, lower, upper, manifest.blocks, budget)?.1
        }
        // No noise and no DP guarantee: the strictest outbound review instead.
        Mode::Reviewed => Vec::new(),
    })
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

/// Runs `spec`'s pipeline over the engine's datasets: the output for
/// reviewers and the candidate for the outbound checks.
pub(crate) async fn run(engine: &Engine, spec: JobSpec, job: Arc<Job>) -> Result<(Output, Candidate)> {
    let (manifest, grade) = (spec.manifest.clone(), spec.input.grade);
    let run = Run { sandbox: engine.sandbox().clone(), settings: engine.settings.clone(), spec, job };
    let (output, candidate) = run.run_mode(&engine.datasets).await?;
    match candidate {
        Some(c) if manifest.mode == Mode::Reviewed => Ok((output, c)),
        _ => {
            let c = dp_candidate(&manifest, &output, grade);
            Ok((output, c))
        }
    }
}

/// One run of a module (or sql query) over one dataset version.
struct Run {
    sandbox: Arc<Sandbox>,
    settings: RunSettings,
    spec: JobSpec,
    /// The sandbox's view of the job: its fuel, its log, and the flag
    /// whoever ends the job sets to stop the module at once.
    job: Arc<Job>,
}

impl Run {
    async fn run_mode(self, datasets: &Dir) -> Result<(Output, Option<Candidate>)> {
        let view = AuthorisedView::open(datasets, vec![self.spec.view_table()], self.settings.view_memory_bytes)?;
        let manifest = &self.spec.manifest;
        let backstop = self.spec.backstop;
        if manifest.mode == Mode::Sql {
            let plan = SqlPlan::compile(manifest)?;
            let accumulate = plan.accumulate(&view, &manifest.input, self.spec.seed).instrument(info_span!("view"));
            let cancelled = async {
                while !self.job.is_cancelled() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            // Dropping the query's future stops DataFusion's work.
            let grouped = tokio::select! {
                done = tokio::time::timeout(backstop, accumulate) => done.map_err(|_| Error::Backstop(backstop))??,
                () = cancelled => return Err(Error::Cancelled),
            };
            let (budget, min) = (self.spec.budget, self.settings.min_contributors);
            let span = info_span!("reduce");
            let release = tokio::task::spawn_blocking(move || span.in_scope(|| grouped.release(budget, min))).await??;
            return Ok((Output { table: release.table, evidence: release.evidence, logs: ModuleLog::default() }, None));
        }
        let units = view.units(&manifest.input, &manifest.columns).instrument(info_span!("view")).await?;
        // Every call is bounded by its fuel (deterministic) and, as a
        // backstop, its epoch deadline, so the job's work is bounded by public
        // quantities: calls × the per-call limit. This outer timeout follows
        // from them too and can only fire when the platform itself misbehaves.
        let job = self.job.clone();
        let span = info_span!("run");
        let work = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                if self.spec.manifest.mode == Mode::Reviewed {
                    self.run_reviewed(units).map(|(o, c)| (o, Some(c)))
                } else {
                    self.run_module(units).map(|o| (o, None))
                }
            })
        });
        let outcome = match tokio::time::timeout(backstop, work).await {
            Ok(joined) => joined?,
            Err(_) => Err(Error::Backstop(backstop)),
        };
        // Whatever ended the run, nothing of it keeps running.
        job.cancel();
        outcome
    }

    /// Fails a run whose job was cancelled while it ran: its output would
    /// be that of a partial run.
    fn not_cancelled(&self) -> Result<()> {
        if self.job.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
    }

    /// Reviewed mode: the module once over every authorised row (no unit
    /// column: it cannot print pseudonyms), then the host's own evidence.
    fn run_reviewed(self, units: Vec<(u64, UnitRows)>) -> Result<(Output, Candidate)> {
        let (sandbox, spec) = (&self.sandbox, &self.spec);
        let prepared = sandbox.prepare_accepted(&spec.module_id, &spec.wasm, World::Reviewed)?;
        let rows = concat(&spec.manifest.columns, units.iter().map(|(_, u)| u.clone()).collect());
        let tables = vec![NamedRows { name: spec.manifest.input.clone(), rows }];
        let out = sandbox.transform(&prepared, tables, spec.seed, &self.job).map_err(Error::Module)?;
        let candidate =
            keyong_check::reviewed_candidate(&spec.manifest, &units, &out, spec.input.grade).map_err(Error::Output)?;
        let evidence = Evidence {
            units_total: units.len() as u64,
            contributors: candidate.evidence.iter().map(|e| e.contributors).collect(),
            ..Evidence::default()
        };
        Ok((Output { table: candidate.table.clone(), evidence, logs: self.job.take_log() }, candidate))
    }

    fn run_module(self, units: Vec<(u64, UnitRows)>) -> Result<Output> {
        let (sandbox, spec, job) = (&self.sandbox, &self.spec, &self.job);
        let manifest = &spec.manifest;
        let world = if manifest.mode == Mode::Blocks { World::Blocks } else { World::Aggregate };
        let prepared = sandbox.prepare_accepted(&spec.module_id, &spec.wasm, world)?;
        let release: Release = if manifest.mode == Mode::Blocks {
            let k = manifest.blocks;
            let mut blocks: Vec<Vec<UnitRows>> = vec![Vec::new(); k as usize];
            for (digest, rows) in units {
                blocks[block_of(digest, spec.seed, k)].push(rows);
            }
            let (lower, upper) = manifest.bounds();
            let mut agg = BlockAggregator::new(manifest.outputs.clone(), lower, upper, k);
            for (i, block) in blocks.into_iter().enumerate() {
                let n = block.len() as u64;
                let rows = concat(&manifest.columns, block);
                let out = sandbox.map_block(&prepared, rows, spec.seed.wrapping_add(i as u64), job).ok();
                agg.add_block(n, out.as_deref());
            }
            info_span!("reduce").in_scope(|| agg.release(spec.budget))
        } else {
            let mut reducer = Reducer::new(manifest);
            for (digest, unit) in units {
                // A failed call (fuel, trap, limit) drops this unit only.
                match sandbox.map_unit(&prepared, unit, unit_seed(spec.seed, digest), job) {
                    Ok(emits) => reducer.add_unit(&emits),
                    Err(_) => reducer.unit_failed(),
                }
            }
            info_span!("reduce").in_scope(|| reducer.release(spec.budget, self.settings.min_contributors))
        }?;
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
