use acf_sdk::{workflow};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

trait Named {}

#[workflow]
impl Named for W {}

fn main() {}
