//! Expansion snapshots (prettyplease-formatted) and error-message snapshots, one scenario each.

mod errors;
mod expansion;
mod form_errors;
mod forms;
mod parity_table;

use proc_macro2::TokenStream;

/// Every `compile_error!` message in `output`, in order.
fn messages_of(output: &TokenStream) -> String {
    let file: syn::File = syn::parse2(output.clone())
        .unwrap_or_else(|err| panic!("expansion does not parse ({err}):\n{output}"));
    let mut out = Vec::new();
    for item in &file.items {
        if let syn::Item::Macro(mac) = item
            && mac
                .mac
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "compile_error")
        {
            let lit: syn::LitStr = mac.mac.parse_body().expect("compile_error! takes a string");
            out.push(lit.value());
        }
    }
    out.join("\n---\n")
}
