//! {{name}}: a blocks-mode keyong module (sample and aggregate).
//!
//! The host splits the privacy units into `blocks` disjoint blocks and calls
//! `map_block` once per block with the rows of that block's units. Each call
//! returns one value per output (`manifest.json`: `mean_kwh` and
//! `share_over_400`); the host clamps each to the declared bounds, averages
//! over the blocks and adds noise. Any computation works, as long as its
//! answer on a block is meaningful.

use keyong_udf_sdk::{BlocksModule, Rows};

struct Module;

impl BlocksModule for Module {
    fn map_block(rows: &Rows) -> Vec<f64> {
        let Ok(kwh) = rows.float64("kwh") else {
            keyong_udf_sdk::log("expected column kwh (float64)");
            return vec![0.0, 0.0];
        };
        let kwh: Vec<f64> = kwh.iter().flatten().copied().collect();
        if kwh.is_empty() {
            return vec![0.0, 0.0];
        }
        let n = kwh.len() as f64;
        vec![kwh.iter().sum::<f64>() / n, kwh.iter().filter(|k| **k > 400.0).count() as f64 / n]
    }
}

keyong_udf_sdk::blocks_module!(Module);

#[cfg(test)]
mod tests {
    use super::*;
    use keyong_udf_sdk::TableBuilder;

    #[test]
    fn a_block_answers_its_mean_and_share() {
        let rows = TableBuilder::default().float64("kwh", vec![Some(100.0), Some(500.0), None]).into_rows();
        assert_eq!(Module::map_block(&rows), vec![300.0, 0.5]);
    }
}
