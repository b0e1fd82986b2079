//! Helpers shared by the benchmark programs.

/// Reads the six descriptor columns of the ESOL test split
/// (`examples/esol_test_split.csv`), one array per molecule.
pub fn read_descriptor_rows(csv: &str) -> Vec<[f32; 6]> {
    let text = std::fs::read_to_string(csv).expect("read the test split");
    text.lines()
        .skip(1)
        .map(|line| {
            // Compound names may contain quoted commas, so count from the right.
            let fields: Vec<&str> = line.rsplitn(10, ',').collect();
            let mut row = [0f32; 6];
            for (i, field) in fields[3..9].iter().rev().enumerate() {
                row[i] = field.parse().expect("numeric descriptor");
            }
            row
        })
        .collect()
}
