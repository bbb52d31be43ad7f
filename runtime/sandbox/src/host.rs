//! The sandbox host: one wasmtime engine and pooling allocator, modules
//! compiled under limits and cached, a fresh instance per call with
//! nothing ambient, fuel and epoch metering, the sealed log, cancellation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use keyong_model::{Column, ColumnValues, Emit, UnitRows};

use crate::compile::{compile_config, precheck, probe};
use crate::job::Cancelled;
use crate::stdio::CappedPipe;
use crate::{ALLOWED_IMPORTS, Error, Limits, Metering, Result};
use crate::{Job, UnitFailure};

mod bindings {
    pub(crate) mod aggregate {
        wasmtime::component::bindgen!({ path: "../../udf-sdk/wit", world: "aggregate" });
    }
    pub(crate) mod blocks {
        wasmtime::component::bindgen!({
            path: "../../udf-sdk/wit",
            world: "blocks",
            with: {
                "keyong:udf/types": super::aggregate::keyong::udf::types,
                "keyong:udf/host": super::aggregate::keyong::udf::host,
            },
        });
    }
    pub(crate) mod reviewed {
        wasmtime::component::bindgen!({
            path: "../../udf-sdk/wit",
            world: "reviewed",
            with: {
                "keyong:udf/types": super::aggregate::keyong::udf::types,
                "keyong:udf/host": super::aggregate::keyong::udf::host,
            },
        });
    }
}

use bindings::aggregate::keyong::udf::types as wit;

/// The WIT world (execution mode) a module is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    /// `map-unit(rows) -> list<emit>`, once per privacy unit.
    Aggregate,
    /// `map-block(rows) -> list<f64>`, once per disjoint block of units.
    Blocks,
    /// `transform(list<table>) -> rows`.
    Reviewed,
}

impl World {
    fn name(self) -> &'static str {
        match self {
            World::Aggregate => "aggregate",
            World::Blocks => "blocks",
            World::Reviewed => "reviewed",
        }
    }
}

/// One named table handed to a reviewed-mode module.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedRows {
    pub name: String,
    pub rows: UnitRows,
}

/// Epoch ticks per second.
const TICKS_PER_SECOND: u64 = 100;

/// Compiled modules by (module id, world), the oldest dropped past the
/// limit (a dropped module is compiled again when next needed).
struct Cache<V = Prepared> {
    modules: HashMap<(String, World), V>,
    order: std::collections::VecDeque<(String, World)>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Self { modules: HashMap::new(), order: std::collections::VecDeque::new() }
    }
}

impl<V> Cache<V> {
    fn get(&self, key: &(String, World)) -> Option<&V> {
        self.modules.get(key)
    }

    fn insert(&mut self, key: (String, World), prepared: V, limit: usize) {
        if self.modules.insert(key.clone(), prepared).is_none() {
            self.order.push_back(key);
        }
        while self.modules.len() > limit.max(1) {
            let Some(oldest) = self.order.pop_front() else { break };
            self.modules.remove(&oldest);
        }
    }
}

/// A module compiled, validated and pre-linked, ready to instantiate.
#[derive(Clone)]
pub struct Prepared(PreparedWorld);

#[derive(Clone)]
enum PreparedWorld {
    Aggregate(bindings::aggregate::AggregatePre<UnitState>),
    Blocks(bindings::blocks::BlocksPre<UnitState>),
    Reviewed(bindings::reviewed::ReviewedPre<UnitState>),
}

/// The per-process sandbox: one engine, one linker, one epoch ticker.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<UnitState>,
    limits: Limits,
    compiled: Mutex<Cache>,
    compiling: Mutex<()>,
    stop_ticker: Arc<AtomicBool>,
    slots: Slots,
}

/// A counting semaphore sized to the instance pool: callers beyond the pool
/// wait for a slot instead of failing to instantiate.
struct Slots {
    free: Mutex<u32>,
    released: std::sync::Condvar,
}

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().expect("slots lock");
        while *free == 0 {
            free = self.released.wait(free).expect("slots lock");
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("slots lock") += 1;
        self.0.released.notify_one();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

pub(crate) struct UnitState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    job: Arc<Job>,
}

/// Store limits that remember whether the module ran into one.
struct Limiter {
    limits: StoreLimits,
    hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let r = self.limits.memory_growing(current, desired, maximum);
        self.hit |= !matches!(r, Ok(true));
        r
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let r = self.limits.table_growing(current, desired, maximum);
        self.hit |= !matches!(r, Ok(true));
        r
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for UnitState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::aggregate::keyong::udf::host::Host for UnitState {
    fn log(&mut self, message: String) {
        self.job.log.lock().expect("log lock").push(&message);
    }
}

impl bindings::aggregate::keyong::udf::types::Host for UnitState {}

struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl Sandbox {
    /// Builds the engine (pooling allocator, copy-on-write memory images,
    /// epoch interruption) and starts the epoch ticker thread.
    pub fn new(limits: Limits) -> Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        let n = limits.pool_instances;
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .max_core_instances_per_component(8)
            .total_memories(n)
            .max_memories_per_component(1)
            .total_tables(n * 4)
            .max_tables_per_component(4)
            .table_elements(limits.table_elements)
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes)
            // Reset only the pages a unit touched, and keep them resident for the next one.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 16);
        let mut config = compile_config(&limits);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool)).memory_init_cow(true);
        let wasmtime = |what| move |e: wasmtime::Error| Error::Wasmtime { what, source: e.into() };
        let engine = Engine::new(&config).map_err(wasmtime("the engine"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasmtime("WASI"))?;
        bindings::aggregate::Aggregate::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasmtime("the host interface"))?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (weak, stop) = (engine.weak(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("keyong-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| Error::Wasmtime { what: "the epoch ticker", source: Box::new(e) })?;
        let slots = Slots { free: Mutex::new(limits.pool_instances), released: std::sync::Condvar::new() };
        let compiled = Mutex::new(Cache::default());
        Ok(Self { engine, linker, limits, compiled, compiling: Mutex::new(()), stop_ticker, slots })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates and compiles `wasm` for `world`, caching the result under
    /// `hash` (the SM3 of the bytes, computed by the caller). The static
    /// limits are checked first, then the compile worker (where configured)
    /// compiles the bytes under its time and memory limits, and only then
    /// are they compiled here (see [`crate::compile`]). Compiled code lives
    /// only in this process's memory; nothing precompiled is ever loaded
    /// from outside.
    pub fn prepare(&self, hash: &str, wasm: &[u8], world: World) -> Result<Prepared> {
        self.prepare_charged(hash, wasm, world).0
    }

    /// [`Sandbox::prepare`], with the CPU milliseconds the compile worker
    /// spent (the compile limit where it was killed), for compile quotas:
    /// a figure that depends on the module, not on how busy the machine is.
    pub fn prepare_charged(&self, hash: &str, wasm: &[u8], world: World) -> (Result<Prepared>, u64) {
        let key = (hash.to_string(), world);
        if let Some(p) = self.compiled.lock().expect("cache lock").get(&key) {
            return (Ok(p.clone()), 0);
        }
        // One compilation at a time: compiles cannot add up past the memory limit.
        let _one = self.compiling.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = self.checks(wasm) {
            return (Err(e), 0);
        }
        let cpu_ms = match &self.limits.compile_worker {
            Some(worker) => match probe(worker, wasm, &self.limits) {
                (Ok(()), ms) => ms,
                (Err(e), ms) => return (Err(e), ms),
            },
            None => 0,
        };
        (self.compile(hash, wasm, world), cpu_ms)
    }

    /// Compiles a module the sandbox accepted before (stored at submission,
    /// so it passed the static checks and the compile worker): after a
    /// restart the in-memory cache is empty, and a run must not fail
    /// because the worker was slow under load.
    pub fn prepare_accepted(&self, hash: &str, wasm: &[u8], world: World) -> Result<Prepared> {
        if let Some(p) = self.compiled.lock().expect("cache lock").get(&(hash.to_string(), world)) {
            return Ok(p.clone());
        }
        // Not behind submissions' compiles: a job must not wait on another
        // organisation's 20 s compile (the job slots bound how many run).
        self.checks(wasm)?;
        self.compile(hash, wasm, world)
    }

    /// The checks before anything compiles: size, magic, component layer, static limits.
    fn checks(&self, wasm: &[u8]) -> Result<()> {
        if wasm.len() > self.limits.max_module_bytes {
            return Err(Error::InvalidModule(format!(
                "module is {} bytes; the limit is {}",
                wasm.len(),
                self.limits.max_module_bytes
            )));
        }
        if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
            return Err(Error::InvalidModule("not a WebAssembly binary".into()));
        }
        // Byte 4..8 is the version/layer: 0x0001_0000 for core modules.
        if wasm[4..8] == [1, 0, 0, 0] {
            return Err(Error::InvalidModule(
                "this is a core WebAssembly module; keyong needs a component (build for wasm32-wasip2)".into(),
            ));
        }
        precheck(wasm, &self.limits)
    }

    fn compile(&self, hash: &str, wasm: &[u8], world: World) -> Result<Prepared> {
        let key = (hash.to_string(), world);
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| Error::InvalidModule(format!("not a valid component: {}", e.root_cause())))?;
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            let interface = name.split('@').next().unwrap_or(name);
            if !ALLOWED_IMPORTS.contains(&interface) {
                return Err(Error::InvalidModule(format!(
                    "module imports `{name}`, which keyong does not provide (allowed: keyong:udf and the WASI stdio, clocks and random interfaces)"
                )));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::InvalidModule(format!("module does not link: {}", e.root_cause())))?;
        let wrong = |e: wasmtime::Error| {
            Error::InvalidModule(format!("module does not export the {} world: {}", world.name(), e.root_cause()))
        };
        let prepared = Prepared(match world {
            World::Aggregate => PreparedWorld::Aggregate(bindings::aggregate::AggregatePre::new(pre).map_err(wrong)?),
            World::Blocks => PreparedWorld::Blocks(bindings::blocks::BlocksPre::new(pre).map_err(wrong)?),
            World::Reviewed => PreparedWorld::Reviewed(bindings::reviewed::ReviewedPre::new(pre).map_err(wrong)?),
        });
        self.compiled.lock().expect("cache lock").insert(key, prepared.clone(), self.limits.compiled_modules);
        Ok(prepared)
    }

    /// Aggregate mode: calls the mapper on one unit's rows.
    pub fn map_unit(
        &self,
        module: &Prepared,
        rows: UnitRows,
        seed: u64,
        job: &Arc<Job>,
    ) -> Result<Vec<Emit>, UnitFailure> {
        let PreparedWorld::Aggregate(pre) = &module.0 else { return Err(UnitFailure::Trap) };
        let rows = to_wit(rows);
        let (fuel, deadline) = (self.limits.call_fuel, self.limits.call_deadline_ms);
        let emits = self
            .call(seed, job, fuel, deadline, |store| pre.instantiate(&mut *store)?.call_map_unit(&mut *store, &rows))?;
        Ok(emits.into_iter().map(|e| Emit { key: e.key, value: e.value }).collect())
    }

    /// Blocks mode: calls the module on one block of units' rows.
    pub fn map_block(
        &self,
        module: &Prepared,
        rows: UnitRows,
        seed: u64,
        job: &Arc<Job>,
    ) -> Result<Vec<f64>, UnitFailure> {
        let PreparedWorld::Blocks(pre) = &module.0 else { return Err(UnitFailure::Trap) };
        let rows = to_wit(rows);
        let (fuel, deadline) = (self.limits.call_fuel, self.limits.call_deadline_ms);
        self.call(seed, job, fuel, deadline, |store| pre.instantiate(&mut *store)?.call_map_block(&mut *store, &rows))
    }

    /// Reviewed mode: calls the module on the authorised tables.
    pub fn transform(
        &self,
        module: &Prepared,
        tables: Vec<NamedRows>,
        seed: u64,
        job: &Arc<Job>,
    ) -> Result<UnitRows, UnitFailure> {
        let PreparedWorld::Reviewed(pre) = &module.0 else { return Err(UnitFailure::Trap) };
        let tables: Vec<wit::Table> =
            tables.into_iter().map(|t| wit::Table { name: t.name, rows: to_wit(t.rows) }).collect();
        // One call over every row: it gets the job's limits, not a mapper's.
        let (fuel, deadline) = (self.limits.transform_fuel, self.limits.job_deadline_ms);
        let rows = self.call(seed, job, fuel, deadline, |store| {
            pre.instantiate(&mut *store)?.call_transform(&mut *store, &tables)
        })?;
        let rows = from_wit(rows);
        if rows.columns.iter().any(|c| c.values.len() != rows.num_rows as usize) {
            return Err(UnitFailure::InvalidOutput);
        }
        Ok(rows)
    }

    /// Runs `f` against a fresh store (and so a fresh instance) with every
    /// limit applied, `fuel` to burn (or the job's lower fuel) and an epoch
    /// deadline of `deadline_ms` (the wall-clock backstop), checking at
    /// every epoch tick whether the job was cancelled. `seed` seeds the
    /// module's random numbers (the host chooses it). Blocks while every pool
    /// slot is in use.
    fn call<R>(
        &self,
        seed: u64,
        job: &Arc<Job>,
        fuel: u64,
        deadline_ms: u64,
        f: impl FnOnce(&mut Store<UnitState>) -> wasmtime::Result<R>,
    ) -> Result<R, UnitFailure> {
        if job.is_cancelled() {
            return Err(UnitFailure::Cancelled);
        }
        let fuel = job.fuel.map_or(fuel, |f| f.min(fuel));
        let _slot = self.slots.acquire();
        let stdio = CappedPipe::new(self.limits.stdio_bytes_per_call);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdio.clone())
            .stderr(stdio.clone())
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .insecure_random_seed(u128::from(seed))
            .secure_random(SeededRandom(seed ^ 0x9e37_79b9_7f4a_7c15))
            .insecure_random(SeededRandom(seed));
        let state = UnitState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.limits.memory_bytes)
                    .table_elements(self.limits.table_elements)
                    .instances(8)
                    .tables(4)
                    .memories(1)
                    .trap_on_grow_failure(true)
                    .build(),
                hit: false,
            },
            job: job.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if self.limits.metering == Metering::Fuel {
            store.set_fuel(fuel).expect("fuel is enabled on the engine");
        }
        // Wake at every tick: stop a cancelled job at once, and end the call
        // when its backstop has passed.
        let mut ticks_left = deadline_ms * TICKS_PER_SECOND / 1000 + 1;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().job.is_cancelled() {
                return Err(Cancelled.into());
            }
            ticks_left = ticks_left.saturating_sub(1);
            Ok(if ticks_left == 0 { UpdateDeadline::Interrupt } else { UpdateDeadline::Continue(1) })
        });
        store.set_hostcall_fuel(self.limits.hostcall_bytes);
        let result = f(&mut store);
        let (captured, dropped) = stdio.take();
        if !captured.is_empty() {
            job.log.lock().expect("log lock").push(String::from_utf8_lossy(&captured).trim_end());
        }
        if dropped > 0 {
            job.note(format!("{dropped} bytes of stdout/stderr dropped at the per-call cap"));
        }
        match result {
            Ok(r) => Ok(r),
            Err(e) if e.downcast_ref::<Cancelled>().is_some() => Err(UnitFailure::Cancelled),
            Err(_) if store.data().limiter.hit => Err(UnitFailure::ResourceLimit),
            Err(e) => Err(match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => UnitFailure::OutOfFuel,
                Some(Trap::Interrupt) => UnitFailure::Deadline,
                _ => UnitFailure::Trap,
            }),
        }
    }
}

/// Moves engine-neutral rows into their WIT form (no copies of the values).
fn to_wit(rows: UnitRows) -> wit::Rows {
    wit::Rows {
        num_rows: rows.num_rows,
        columns: rows
            .columns
            .into_iter()
            .map(|c| wit::Column {
                name: c.name,
                values: match c.values {
                    ColumnValues::Int64(v) => wit::ColumnValues::Int64(v),
                    ColumnValues::Float64(v) => wit::ColumnValues::Float64(v),
                    ColumnValues::Utf8(v) => wit::ColumnValues::Utf8(v),
                    ColumnValues::Boolean(v) => wit::ColumnValues::Boolean(v),
                },
            })
            .collect(),
    }
}

fn from_wit(rows: wit::Rows) -> UnitRows {
    UnitRows {
        num_rows: rows.num_rows,
        columns: rows
            .columns
            .into_iter()
            .map(|c| Column {
                name: c.name,
                values: match c.values {
                    wit::ColumnValues::Int64(v) => ColumnValues::Int64(v),
                    wit::ColumnValues::Float64(v) => ColumnValues::Float64(v),
                    wit::ColumnValues::Utf8(v) => ColumnValues::Utf8(v),
                    wit::ColumnValues::Boolean(v) => ColumnValues::Boolean(v),
                },
            })
            .collect(),
    }
}

/// A SplitMix64 stream: the module's only source of randomness, seeded by the host.
struct SeededRandom(u64);

impl rand_core::TryRng for SeededRandom {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> Sandbox {
        Sandbox::new(Limits { pool_instances: 2, ..Limits::default() }).unwrap()
    }

    fn refused(wasm: &[u8]) -> String {
        match sandbox().prepare("h", wasm, World::Aggregate) {
            Err(Error::InvalidModule(m)) => m,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn refuses_garbage_core_modules_and_oversized_binaries() {
        assert!(refused(b"hello world").contains("not a WebAssembly binary"));
        assert!(refused(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
        assert!(refused(b"\0asm\x0d\0\x01\0\xff\xff").contains("not a valid component"));
        let s = Sandbox::new(Limits { pool_instances: 1, max_module_bytes: 10, ..Limits::default() }).unwrap();
        assert!(
            matches!(s.prepare("h", &[0u8; 11], World::Aggregate), Err(Error::InvalidModule(m)) if m.contains("limit"))
        );
    }

    #[test]
    fn the_compiled_cache_keeps_the_newest() {
        let mut cache = Cache::default();
        let key = |h: &str| (h.to_string(), World::Aggregate);
        for (i, h) in ["a", "b", "a", "c"].iter().enumerate() {
            cache.insert(key(h), i, 2);
        }
        assert_eq!((cache.get(&key("a")), cache.get(&key("b")), cache.get(&key("c"))), (None, Some(&1), Some(&3)));
    }
}
