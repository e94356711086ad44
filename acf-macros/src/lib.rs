//! Attribute macros for acf workflows. Use them through `acf_sdk` (re-exported there).

use proc_macro::TokenStream;

/// Declares a Hatchet workflow from an inherent impl block (filled in by the macros issue).
#[proc_macro_attribute]
pub fn workflow(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
