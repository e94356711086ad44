//! Where generated code finds the runtime: `::acf_sdk::__private`, or `<crate = "...">::__private`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Path;

/// Converts to the absolute path of the runtime's hidden support module.
pub(crate) struct Private<'a> {
    krate: Option<&'a Path>,
}

impl<'a> Private<'a> {
    pub(crate) fn new(krate: Option<&'a Path>) -> Self {
        Private { krate }
    }
}

impl ToTokens for Private<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self.krate {
            Some(path) => tokens.extend(quote!(#path::__private)),
            None => tokens.extend(quote!(::acf_sdk::__private)),
        }
    }
}
