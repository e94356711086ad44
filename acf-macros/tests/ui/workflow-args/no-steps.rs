use acf_sdk::{workflow};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

#[workflow]
impl W {
    fn helper(&self) {}
}

fn main() {}
