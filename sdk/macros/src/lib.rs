//! The macros of `weir-sdk`: `#[filter]`, `#[enricher]` and `#[derive(Config)]`.
//! See that crate for how they are used; every mistake is reported at the span
//! that holds it.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, FnArg, Ident, Item, LitStr, Token, Type};

/// The WIT contract, compiled into every plugin's glue.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// `#[filter(reads(...), lookups(...), name = "...", version = "...")]`
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(Kind::Filter, attr.into(), item.into()).into()
}

/// `#[enricher(reads(...), writes(...), lookups(...), name = "...", version = "...")]`
#[proc_macro_attribute]
pub fn enricher(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(Kind::Enricher, attr.into(), item.into()).into()
}

fn attribute(kind: Kind, attr: Tokens, item: Tokens) -> Tokens {
    let mut args = match parse_args(kind, attr) {
        Ok(args) => args,
        Err(e) => {
            // The item as written, beside the error, so that nothing else
            // (an unused import, say) is reported for it.
            let error = e.into_compile_error();
            return quote!(#error #item);
        }
    };
    let keys = key_modules(kind, &args);
    let mut errors = std::mem::take(&mut args.errors);
    match expand(kind, &args, &keys, item.clone()) {
        Ok(tokens) if errors.is_empty() => tokens,
        result => {
            errors.extend(result.err());
            let errors = errors.into_iter().map(Error::into_compile_error);
            // The item as written and the keys of what was declared, beside
            // the errors, so that nothing else (an unused import, a key) is
            // reported for it.
            quote!(#(#errors)* #keys #item)
        }
    }
}

/// `#[derive(Config)]` with `#[config(default = "...", rename = "...")]` on fields.
#[proc_macro_derive(Config, attributes(config))]
pub fn derive_config(item: TokenStream) -> TokenStream {
    derive(item.into())
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Filter,
    Enricher,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Filter => "#[weir_sdk::filter]",
            Kind::Enricher => "#[weir_sdk::enricher]",
        }
    }
}

/// One declared field: `NAME: TYPE`, `NAME: TYPE?` or, for a name that is not
/// a Rust identifier, `"NAME" as KEY: TYPE`.
struct Field {
    /// The name in the payload and in `describe`.
    name: LitStr,
    /// The name of its key constant in the generated module (none when it
    /// has no valid one; an error says so).
    key: Option<Ident>,
    /// One of the contract's types (`json` in place of an unknown one, with
    /// an error).
    ty: Ident,
    nullable: bool,
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Field> {
        let name = if input.peek(LitStr) {
            input.parse::<LitStr>()?
        } else {
            let id: Ident = input.call(Ident::parse_any)?;
            LitStr::new(&id.unraw().to_string(), id.span())
        };
        let key = if input.peek(Token![as]) {
            input.parse::<Token![as]>()?;
            Some(input.parse::<Ident>()?)
        } else {
            None
        };
        input.parse::<Token![:]>()?;
        let ty: Ident = input.parse()?;
        let nullable = input.parse::<Option<Token![?]>>()?.is_some();
        Ok(Field {
            name,
            key,
            ty,
            nullable,
        })
    }
}

impl Field {
    /// Checks the type and gives the field its key, reporting what is wrong
    /// and leaving a usable stand-in.
    fn check(&mut self, errors: &mut Vec<Error>) {
        if !["text", "int", "float", "boolean", "json"].contains(&self.ty.to_string().as_str()) {
            errors.push(Error::new(
                self.ty.span(),
                format!(
                    "unknown field type `{}`: expected text, int, float, boolean or json",
                    self.ty
                ),
            ));
            self.ty = Ident::new("json", self.ty.span());
        }
        if self.key.is_none() {
            let (name, span) = (self.name.value(), self.name.span());
            self.key = key_ident(&name, span);
            if self.key.is_none() {
                let suggested = suggested_key(&name);
                errors.push(Error::new(
                    span,
                    format!(
                        "`{name}` cannot name a key constant: give it one with `as`, `{:?} as {suggested}: {}{}`",
                        name,
                        self.ty,
                        if self.nullable { "?" } else { "" },
                    ),
                ));
                self.key = key_ident(&suggested, span);
            }
        }
    }
}

/// `name` as an identifier, a keyword as a raw one (`r#type`); `None` when it
/// cannot be one.
fn key_ident(name: &str, span: Span) -> Option<Ident> {
    syn::parse::Parser::parse_str(Ident::parse_any, name).ok()?;
    if name.starts_with("r#") {
        None
    } else if syn::parse_str::<Ident>(name).is_ok() {
        Some(Ident::new(name, span))
    } else if ["self", "Self", "super", "crate", "_"].contains(&name) {
        None
    } else {
        Some(Ident::new_raw(name, span))
    }
}

/// A key name for a field name that is not an identifier: other characters as
/// `_`, `_` first if it starts with a digit, `_` last if it is still a word
/// that cannot be a key (`self`).
fn suggested_key(name: &str) -> String {
    let mut key: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    if !key.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        key.insert(0, '_');
    }
    if key_ident(&key, Span::call_site()).is_none() {
        key.push('_');
    }
    key
}

/// A declared table: `NAME = "KEY_FIELD"`, looked up for the whole batch by
/// the key field, or `NAME`, looked up one key at a time.
struct Lookup {
    table: Ident,
    key: Option<LitStr>,
}

impl Parse for Lookup {
    fn parse(input: ParseStream) -> syn::Result<Lookup> {
        let table: Ident = input.parse()?;
        let key = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<LitStr>()?)
        } else {
            None
        };
        Ok(Lookup { table, key })
    }
}

#[derive(Default)]
struct Args {
    reads: Vec<Field>,
    writes: Vec<Field>,
    lookups: Vec<Lookup>,
    name: Option<LitStr>,
    version: Option<LitStr>,
    /// Mistakes that leave the declarations usable: reported beside the keys
    /// of what was declared, so that the function's uses of them resolve.
    errors: Vec<Error>,
}

fn parse_args(kind: Kind, attr: Tokens) -> syn::Result<Args> {
    let mut args = Args::default();
    let mut writes_span = None;
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let list = |meta: &syn::meta::ParseNestedMeta| -> syn::Result<Vec<Field>> {
            let content;
            syn::parenthesized!(content in meta.input);
            Ok(Punctuated::<Field, Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect())
        };
        match key.as_str() {
            "reads" => args.reads = list(&meta)?,
            "writes" if kind == Kind::Enricher => {
                writes_span = Some(meta.path.span());
                args.writes = list(&meta)?;
            }
            "writes" => {
                args.errors
                    .push(meta.error("a filter writes no fields; use #[weir_sdk::enricher]"));
                list(&meta)?;
            }
            "lookups" => {
                let content;
                syn::parenthesized!(content in meta.input);
                args.lookups = Punctuated::<Lookup, Token![,]>::parse_terminated(&content)?
                    .into_iter()
                    .collect();
            }
            "name" => args.name = Some(meta.value()?.parse()?),
            "version" => args.version = Some(meta.value()?.parse()?),
            _ => {
                return Err(meta.error(format!(
                    "unknown argument of {}: expected reads, {}lookups, name or version",
                    kind.attr(),
                    if kind == Kind::Enricher {
                        "writes, "
                    } else {
                        ""
                    }
                )))
            }
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    let errors = &mut args.errors;
    if kind == Kind::Enricher && args.writes.is_empty() {
        errors.push(Error::new(
            writes_span.unwrap_or_else(Span::call_site),
            "an enricher declares the fields it sets: writes(NAME: TYPE, ...)",
        ));
    }
    for (list, fields) in [("reads", &mut args.reads), ("writes", &mut args.writes)] {
        fields.iter_mut().for_each(|f| f.check(errors));
        // A field declared again is reported and left out.
        let mut kept: Vec<Field> = Vec::with_capacity(fields.len());
        for f in fields.drain(..) {
            if let Some(first) = kept.iter().find(|g| g.name.value() == f.name.value()) {
                let mut e = Error::new(
                    f.name.span(),
                    format!("`{}` is declared twice in {list}(...)", f.name.value()),
                );
                e.combine(Error::new(first.name.span(), "first declared here"));
                errors.push(e);
            } else if let Some(first) = kept.iter().find(|g| f.key.is_some() && g.key == f.key) {
                let key = f.key.as_ref().expect("checked");
                let mut e = Error::new(
                    key.span(),
                    format!("two fields of {list}(...) have the key `{key}`"),
                );
                e.combine(Error::new(first.name.span(), "the other one"));
                errors.push(e);
            } else {
                kept.push(f);
            }
        }
        *fields = kept;
    }
    let mut tables: Vec<Lookup> = Vec::with_capacity(args.lookups.len());
    for l in args.lookups.drain(..) {
        if tables.iter().any(|m| m.table == l.table) {
            errors.push(Error::new(
                l.table.span(),
                format!("table `{}` is declared twice in lookups(...)", l.table),
            ));
            continue;
        }
        if let Some(key) = &l.key {
            if !args.reads.iter().any(|f| f.name.value() == key.value()) {
                errors.push(Error::new(
                    key.span(),
                    format!(
                        "`{}` is not among the fields this plugin reads: the key field of table \
                         `{}` is read from every event, so declare it in reads(...)",
                        key.value(),
                        l.table
                    ),
                ));
            }
        }
        tables.push(l);
    }
    args.lookups = tables;
    Ok(args)
}

/// The marker type of a field's type in `weir_sdk::types`.
fn marker(f: &Field) -> Ident {
    let name = match f.ty.to_string().as_str() {
        "text" => "Text",
        "int" => "Int",
        "float" => "Float",
        "boolean" => "Boolean",
        _ => "Json",
    };
    Ident::new(name, f.ty.span())
}

/// The fields as `FieldSpec`s, for `describe` and `init`.
fn field_specs(fields: &[Field]) -> Tokens {
    let specs = fields.iter().map(|f| {
        let name = &f.name;
        let nullable = f.nullable;
        let ty = marker(f);
        quote! {
            ::weir_sdk::FieldSpec { name: #name, ty: ::weir_sdk::FieldType::#ty, nullable: #nullable }
        }
    });
    quote! { &[#(#specs),*] }
}

/// `name` as a JSON string followed by `:`, as the host reads it in additions.
fn json_member(name: &str) -> String {
    let mut out = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push_str("\":");
    out
}

/// What `#[doc]` says of a declared field: `` `ip`: text? ``.
fn field_doc(f: &Field) -> String {
    format!(
        "`{}`: {}{}",
        f.name.value(),
        f.ty,
        if f.nullable { "?" } else { "" }
    )
}

/// The modules of keys beside the function: `reads`, `writes` (enrichers) and
/// `lookups`, one constant per declaration, named by its key and spanned at
/// it, so that an undeclared name fails to resolve where it is used.
fn key_modules(kind: Kind, args: &Args) -> Tokens {
    let reads = args.reads.iter().filter_map(|f| {
        let (key, name, ty, doc) = (f.key.as_ref()?, &f.name, marker(f), field_doc(f));
        Some(quote_spanned! {key.span()=>
            #[doc = #doc]
            pub const #key: ::weir_sdk::Read<::weir_sdk::types::#ty> = ::weir_sdk::Read::__declared(#name);
        })
    });
    let writes = args.writes.iter().filter_map(|f| {
        let (key, name, doc) = (f.key.as_ref()?, &f.name, field_doc(f));
        let member = json_member(&f.name.value());
        let ty = marker(f);
        let ty = if f.nullable {
            quote!(::std::option::Option<::weir_sdk::types::#ty>)
        } else {
            quote!(::weir_sdk::types::#ty)
        };
        Some(quote_spanned! {key.span()=>
            #[doc = #doc]
            pub const #key: ::weir_sdk::Write<#ty> = ::weir_sdk::Write::__declared(#name, #member);
        })
    });
    let mut keyed = 0usize;
    let lookups = args.lookups.iter().map(|l| {
        let table = &l.table;
        let name = table.unraw().to_string();
        match &l.key {
            Some(key) => {
                let doc = format!(
                    "Table `{name}`, looked up by `{}` for the whole batch.",
                    key.value()
                );
                let index = keyed;
                keyed += 1;
                quote_spanned! {table.span()=>
                    #[doc = #doc]
                    pub const #table: ::weir_sdk::KeyedTable = ::weir_sdk::KeyedTable::__declared(#name, #index);
                }
            }
            None => {
                let doc = format!("Table `{name}`, looked up one key at a time.");
                quote_spanned! {table.span()=>
                    #[doc = #doc]
                    pub const #table: ::weir_sdk::Table = ::weir_sdk::Table::__declared(#name);
                }
            }
        }
    });
    let lookups: Vec<Tokens> = lookups.collect();
    let writes = match kind {
        Kind::Filter => quote!(),
        Kind::Enricher => quote! {
            /// The fields this plugin writes, as declared in `writes(...)`: a
            /// key each, for `Fields::set`.
            #[allow(dead_code, non_upper_case_globals)]
            mod writes {
                #(#writes)*
            }
        },
    };
    quote! {
        /// The fields this plugin reads, as declared in `reads(...)`: a key
        /// each, for `Event::get` and `Event::has`.
        #[allow(dead_code, non_upper_case_globals)]
        mod reads {
            #(#reads)*
        }

        #writes

        /// The lookup tables this plugin reads, as declared in `lookups(...)`:
        /// those with a key field for `Event::lookup`, each for `.get(key)`.
        #[allow(dead_code, non_upper_case_globals)]
        mod lookups {
            #(#lookups)*
        }
    }
}

/// The type behind `&T` (or `&mut T` when `mutable` may be), or an error at
/// the argument.
fn referent(arg: &FnArg, what: &str, mutable: bool) -> syn::Result<Type> {
    match arg {
        FnArg::Typed(pt) => match &*pt.ty {
            Type::Reference(r) if r.mutability.is_none() || mutable => Ok((*r.elem).clone()),
            other => Err(Error::new(
                other.span(),
                format!("take the {what} by reference: `&{}`", quote!(#other)),
            )),
        },
        FnArg::Receiver(r) => Err(Error::new(
            r.span(),
            "a plugin function is a free function, not a method",
        )),
    }
}

fn expand(kind: Kind, args: &Args, keys: &Tokens, item: Tokens) -> syn::Result<Tokens> {
    let item: Item = syn::parse2(item)?;
    let Item::Fn(func) = item else {
        return Err(Error::new(
            item.span(),
            format!("{} goes on a function", kind.attr()),
        ));
    };
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        return Err(Error::new(a.span(), "a plugin function cannot be async"));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "a plugin function cannot be generic",
        ));
    }
    let inputs: Vec<&FnArg> = sig.inputs.iter().collect();
    let (min, max, shape) = match kind {
        Kind::Filter => (
            1,
            2,
            "fn(event: &Event) or fn(event: &Event, state: &State) (or `&mut State`)",
        ),
        Kind::Enricher => (
            2,
            3,
            "fn(event: &Event, out: &mut Fields) or fn(event: &Event, state: &State, out: &mut Fields) (or `&mut State`)",
        ),
    };
    if inputs.len() < min || inputs.len() > max {
        return Err(Error::new(
            sig.inputs
                .span()
                .join(sig.ident.span())
                .unwrap_or(sig.ident.span()),
            format!("{} expects {shape}", kind.attr()),
        ));
    }
    referent(inputs[0], "event", false)?;
    let has_config = inputs.len() == max;
    let config_ty = if has_config {
        let ty = referent(inputs[1], "state", true)?;
        quote!(#ty)
    } else {
        quote!(())
    };
    if kind == Kind::Enricher {
        let last = inputs[inputs.len() - 1];
        let ok = matches!(last, FnArg::Typed(pt) if matches!(&*pt.ty, Type::Reference(r) if r.mutability.is_some()));
        if !ok {
            return Err(Error::new(
                last.span(),
                "the last argument of an enricher is where it writes: `out: &mut Fields`",
            ));
        }
    }
    let ident = &sig.ident;
    let name = args
        .name
        .as_ref()
        .map_or_else(|| quote!(env!("CARGO_PKG_NAME")), |n| quote!(#n));
    let version = args
        .version
        .as_ref()
        .map_or_else(|| quote!(env!("CARGO_PKG_VERSION")), |v| quote!(#v));
    let reads = field_specs(&args.reads);
    let writes = field_specs(&args.writes);
    // The tables prefetched for every batch, in the order of their keys' indices.
    let lookups = args.lookups.iter().filter_map(|l| {
        let t = l.table.unraw().to_string();
        let k = l.key.as_ref()?;
        Some(quote!((#t, #k)))
    });
    let span = sig.ident.span();
    let (entry, entry_doc) = match kind {
        Kind::Filter => {
            let call = if has_config {
                quote_spanned!(span=> super::#ident(e, c))
            } else {
                quote_spanned!(span=> { let _ = c; super::#ident(e) })
            };
            (
                quote! {
                    pub fn keep(
                        batch: &::weir_sdk::Batch,
                    ) -> ::std::result::Result<(::std::vec::Vec<bool>, ::std::vec::Vec<::weir_sdk::Rejection>), ::weir_sdk::RetryLater> {
                        with_state(|state| ::weir_sdk::rt::run_filter(batch, state, LOOKUPS, |e, c| #call))
                    }

                    /// Runs the plugin natively over JSON payloads, `init` first.
                    pub fn test(
                        events: &[&str],
                        config: &[(&str, &str)],
                    ) -> ::std::result::Result<::std::vec::Vec<::weir_sdk::testing::Outcome>, ::std::string::String> {
                        init(config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())?;
                        let batch = ::weir_sdk::testing::TestBatch::new(events);
                        let (keep, rejected) = keep(&batch.view()).map_err(|r| format!("retry later: {}", r.0))?;
                        Ok(::weir_sdk::testing::filter_outcomes(&keep, &rejected))
                    }
                },
                "filter",
            )
        }
        Kind::Enricher => {
            let call = if has_config {
                quote_spanned!(span=> super::#ident(e, c, out))
            } else {
                quote_spanned!(span=> { let _ = c; super::#ident(e, out) })
            };
            (
                quote! {
                    pub fn enrich(
                        batch: &::weir_sdk::Batch,
                    ) -> ::std::result::Result<::weir_sdk::Additions, ::weir_sdk::RetryLater> {
                        with_state(|state| {
                            ::weir_sdk::rt::run_enricher(batch, state, LOOKUPS, WRITES.len(), |e, c, out| #call)
                        })
                    }

                    /// Runs the plugin natively over JSON payloads, `init` first.
                    pub fn test(
                        events: &[&str],
                        config: &[(&str, &str)],
                    ) -> ::std::result::Result<::std::vec::Vec<::weir_sdk::testing::Outcome>, ::std::string::String> {
                        init(config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())?;
                        let batch = ::weir_sdk::testing::TestBatch::new(events);
                        let additions = enrich(&batch.view()).map_err(|r| format!("retry later: {}", r.0))?;
                        Ok(::weir_sdk::testing::enricher_outcomes(&additions))
                    }
                },
                "enricher",
            )
        }
    };
    // The return type checked where it is written, not inside the expansion.
    let ret_check = match &sig.output {
        syn::ReturnType::Type(_, ty) => {
            let bound = match kind {
                Kind::Filter => quote!(::weir_sdk::rt::IntoVerdict),
                Kind::Enricher => quote!(::weir_sdk::rt::IntoDone),
            };
            quote_spanned! {ty.span()=>
                const _: fn() = || {
                    fn returns<T: #bound>() {}
                    returns::<#ty>();
                };
            }
        }
        syn::ReturnType::Default if kind == Kind::Filter => {
            return Err(Error::new(
                sig.paren_token.span.close(),
                "a filter returns its verdict: `-> bool`, `-> Verdict` or `-> Result<_, E>`",
            ))
        }
        syn::ReturnType::Default => quote!(),
    };
    let glue = glue(kind);
    let doc = format!(
        "The plugin's entry points, generated by `#[weir_sdk::{entry_doc}]`: the wasm glue \
         calls them, and so can native tests and baselines."
    );
    Ok(quote! {
        #func

        #ret_check

        #keys

        #[doc = #doc]
        pub mod weir_plugin {
            #[allow(unused_imports)]
            use super::*;

            /// What the plugin function takes as its state (its second
            /// argument), or nothing.
            type __State = #config_ty;

            const READS: &[::weir_sdk::FieldSpec] = #reads;
            const WRITES: &[::weir_sdk::FieldSpec] = #writes;
            const LOOKUPS: &[(&str, &str)] = &[#(#lookups),*];

            ::std::thread_local! {
                /// The state `init` built. The instance runs one call at a
                /// time on one thread; a batch holds it for its whole run.
                static STATE: ::std::cell::RefCell<::std::option::Option<__State>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            fn with_state<R>(f: impl FnOnce(&mut __State) -> R) -> R {
                STATE.with_borrow_mut(|s| f(s.as_mut().expect("the host calls init before any batch")))
            }

            /// What the plugin is and which fields it reads and writes.
            pub fn describe() -> ::weir_sdk::Description {
                ::weir_sdk::Description {
                    name: #name,
                    version: #version,
                    reads: READS.to_vec(),
                    writes: WRITES.to_vec(),
                }
            }

            /// Builds the plugin's state from the step's configuration; an
            /// error names the key.
            pub fn init(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                let parsed = ::weir_sdk::rt::init::<__State>(config, READS)?;
                STATE.with_borrow_mut(|s| *s = ::std::option::Option::Some(parsed));
                Ok(())
            }

            #entry
        }

        #glue
    })
}

/// The wasm32 glue: bindings generated from the contract, the host's imports
/// installed into the SDK, and the exports forwarded to `weir_plugin`.
fn glue(kind: Kind) -> Tokens {
    let (world, iface, entry) = match kind {
        Kind::Filter => (
            "filter-plugin",
            quote!(filter),
            quote! {
                fn keep(
                    b: t::Batch,
                ) -> ::std::result::Result<(::std::vec::Vec<bool>, ::std::vec::Vec<t::Rejection>), t::RetryLater> {
                    match super::weir_plugin::keep(&view(&b)) {
                        Ok((keep, rejected)) => Ok((keep, rejections(rejected))),
                        Err(r) => Err(t::RetryLater { reason: r.0 }),
                    }
                }
            },
        ),
        Kind::Enricher => (
            "enricher-plugin",
            quote!(enricher),
            quote! {
                fn enrich(b: t::Batch) -> ::std::result::Result<t::Additions, t::RetryLater> {
                    match super::weir_plugin::enrich(&view(&b)) {
                        Ok(a) => Ok(t::Additions {
                            fields: a.fields,
                            field_ends: a.field_ends,
                            rejected: rejections(a.rejected),
                        }),
                        Err(r) => Err(t::RetryLater { reason: r.0 }),
                    }
                }
            },
        ),
    };
    quote! {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(unsafe_code, clippy::all)]
        mod __weir_glue {
            ::weir_sdk::rt::wit_bindgen::generate!({
                inline: #WIT,
                world: #world,
                runtime_path: "::weir_sdk::rt::wit_bindgen::rt",
            });

            use weir::plugin::types as t;
            use weir::plugin::host as h;

            struct Export;

            fn field_type(f: ::weir_sdk::FieldType) -> t::FieldType {
                match f {
                    ::weir_sdk::FieldType::Text => t::FieldType::Text,
                    ::weir_sdk::FieldType::Int => t::FieldType::Int,
                    ::weir_sdk::FieldType::Float => t::FieldType::Float,
                    ::weir_sdk::FieldType::Boolean => t::FieldType::Boolean,
                    ::weir_sdk::FieldType::Json => t::FieldType::Json,
                }
            }

            fn specs(s: ::std::vec::Vec<::weir_sdk::FieldSpec>) -> ::std::vec::Vec<t::FieldSpec> {
                s.into_iter()
                    .map(|f| t::FieldSpec { name: f.name.into(), type_: field_type(f.ty), nullable: f.nullable })
                    .collect()
            }

            fn rejections(r: ::std::vec::Vec<::weir_sdk::Rejection>) -> ::std::vec::Vec<t::Rejection> {
                r.into_iter().map(|r| t::Rejection { index: r.index, reason: r.reason }).collect()
            }

            fn view(b: &t::Batch) -> ::weir_sdk::Batch<'_> {
                ::weir_sdk::Batch {
                    topic: &b.topic,
                    payloads: &b.payloads,
                    payload_ends: &b.payload_ends,
                    keys: &b.keys,
                    key_ends: &b.key_ends,
                    fields: &b.fields,
                    field_ends: &b.field_ends,
                    timestamps_ms: &b.timestamps_ms,
                    partitions: &b.partitions,
                    offsets: &b.offsets,
                }
            }

            fn install_host() {
                ::weir_sdk::__install_host(::weir_sdk::HostFns {
                    log: |level, message| {
                        let level = match level {
                            ::weir_sdk::Level::Trace => h::Level::Trace,
                            ::weir_sdk::Level::Debug => h::Level::Debug,
                            ::weir_sdk::Level::Info => h::Level::Info,
                            ::weir_sdk::Level::Warn => h::Level::Warn,
                            ::weir_sdk::Level::Error => h::Level::Error,
                        };
                        h::log(level, message)
                    },
                    lookup: |table, key| h::lookup(table, key),
                    lookup_many: |table, keys, ends| h::lookup_many(table, keys, ends),
                });
            }

            impl exports::weir::plugin::#iface::Guest for Export {
                fn describe() -> t::Description {
                    let d = super::weir_plugin::describe();
                    t::Description {
                        name: d.name.into(),
                        version: d.version.into(),
                        reads: specs(d.reads),
                        writes: specs(d.writes),
                    }
                }

                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    install_host();
                    super::weir_plugin::init(config)
                }

                #entry
            }

            export!(Export);
        }
    }
}

fn derive(item: Tokens) -> syn::Result<Tokens> {
    let input: syn::DeriveInput = syn::parse2(item)?;
    let ident = &input.ident;
    let syn::Data::Struct(data) = &input.data else {
        return Err(Error::new(
            input.span(),
            "derive(Config) needs a struct with named fields",
        ));
    };
    let syn::Fields::Named(named) = &data.fields else {
        return Err(Error::new(
            data.fields.span(),
            "derive(Config) needs a struct with named fields",
        ));
    };
    let mut inits = Vec::new();
    for field in &named.named {
        let name = field.ident.as_ref().expect("named");
        let mut key = name.to_string();
        let mut default: Option<LitStr> = None;
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("config")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    default = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("rename") {
                    key = meta.value()?.parse::<LitStr>()?.value();
                } else {
                    return Err(meta.error("unknown config attribute: expected default or rename"));
                }
                Ok(())
            })?;
        }
        let optional = matches!(&field.ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"));
        let value = match (&default, optional) {
            (Some(d), false) => quote_spanned!(field.span()=> config.get_or(#key, #d)?),
            (Some(d), true) => {
                return Err(Error::new(
                    d.span(),
                    "an Option field has no default: drop `default` or the Option",
                ))
            }
            (None, true) => quote_spanned!(field.span()=> config.get(#key)?),
            (None, false) => quote_spanned!(field.span()=> config.required(#key)?),
        };
        inits.push(quote!(#name: #value));
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::weir_sdk::FromConfig for #ident #ty_generics #where_clause {
            fn from_config(
                config: &mut ::weir_sdk::Config,
            ) -> ::std::result::Result<Self, ::weir_sdk::ConfigError> {
                ::std::result::Result::Ok(#ident { #(#inits),* })
            }
        }
    })
}
