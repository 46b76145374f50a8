//! The macros of `weir-sdk`: `#[filter]`, `#[enricher]` and `#[derive(Config)]`.
//! See that crate for how they are used; every mistake is reported at the span
//! that holds it.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, FnArg, Ident, Item, LitStr, Token, Type};

/// The WIT contract, compiled into every plugin's glue.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// `#[filter(reads(...), lookups(...), name = "...", version = "...")]`
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: Tokens = item.into();
    expand(Kind::Filter, attr.into(), item.clone())
        .unwrap_or_else(|e| {
            // The item as written, beside the error, so that nothing else
            // (an unused import, say) is reported for it.
            let error = e.into_compile_error();
            quote!(#error #item)
        })
        .into()
}

/// `#[enricher(reads(...), writes(...), lookups(...), name = "...", version = "...")]`
#[proc_macro_attribute]
pub fn enricher(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: Tokens = item.into();
    expand(Kind::Enricher, attr.into(), item.clone())
        .unwrap_or_else(|e| {
            // The item as written, beside the error, so that nothing else
            // (an unused import, say) is reported for it.
            let error = e.into_compile_error();
            quote!(#error #item)
        })
        .into()
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

struct Field {
    name: LitStr,
    ty: Ident,
    nullable: bool,
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Field> {
        let name = if input.peek(LitStr) {
            input.parse::<LitStr>()?
        } else {
            let id: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            LitStr::new(&id.to_string(), id.span())
        };
        input.parse::<Token![:]>()?;
        let ty: Ident = input.parse()?;
        if !["text", "int", "float", "boolean", "json"].contains(&ty.to_string().as_str()) {
            return Err(Error::new(
                ty.span(),
                format!("unknown field type `{ty}`: expected text, int, float, boolean or json"),
            ));
        }
        let nullable = input.parse::<Option<Token![?]>>()?.is_some();
        Ok(Field { name, ty, nullable })
    }
}

struct Lookup {
    table: LitStr,
    key: LitStr,
}

impl Parse for Lookup {
    fn parse(input: ParseStream) -> syn::Result<Lookup> {
        let table: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let key: LitStr = input.parse()?;
        Ok(Lookup {
            table: LitStr::new(&table.to_string(), table.span()),
            key,
        })
    }
}

#[derive(Default)]
struct Args {
    reads: Vec<Field>,
    writes: Vec<Field>,
    lookups: Vec<Lookup>,
    name: Option<LitStr>,
    version: Option<LitStr>,
    writes_span: Option<Span>,
}

fn parse_args(kind: Kind, attr: Tokens) -> syn::Result<Args> {
    let mut args = Args::default();
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
                args.writes_span = Some(meta.path.span());
                args.writes = list(&meta)?;
            }
            "writes" => {
                return Err(meta.error("a filter writes no fields; use #[weir_sdk::enricher]"))
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
    if kind == Kind::Enricher && args.writes.is_empty() {
        return Err(Error::new(
            args.writes_span.unwrap_or_else(Span::call_site),
            "an enricher declares the fields it sets: writes(NAME: TYPE, ...)",
        ));
    }
    Ok(args)
}

fn field_specs(fields: &[Field]) -> Tokens {
    let specs = fields.iter().map(|f| {
        let name = &f.name;
        let nullable = f.nullable;
        let ty = format_ident!(
            "{}",
            match f.ty.to_string().as_str() {
                "text" => "Text",
                "int" => "Int",
                "float" => "Float",
                "boolean" => "Boolean",
                _ => "Json",
            }
        );
        quote! {
            ::weir_sdk::FieldSpec { name: #name, ty: ::weir_sdk::FieldType::#ty, nullable: #nullable }
        }
    });
    quote! { ::std::vec![#(#specs),*] }
}

/// The type behind `&T`, or an error at the argument.
fn referent(arg: &FnArg, what: &str) -> syn::Result<Type> {
    match arg {
        FnArg::Typed(pt) => match &*pt.ty {
            Type::Reference(r) if r.mutability.is_none() || what == "fields" => {
                Ok((*r.elem).clone())
            }
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

fn expand(kind: Kind, attr: Tokens, item: Tokens) -> syn::Result<Tokens> {
    let args = parse_args(kind, attr)?;
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
        Kind::Filter => (1, 2, "fn(event: &Event) or fn(event: &Event, config: &YourConfig)"),
        Kind::Enricher => (
            2,
            3,
            "fn(event: &Event, out: &mut Fields) or fn(event: &Event, config: &YourConfig, out: &mut Fields)",
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
    referent(inputs[0], "event")?;
    let has_config = inputs.len() == max;
    let config_ty = if has_config {
        let ty = referent(inputs[1], "configuration")?;
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
    let lookups = args.lookups.iter().map(|l| {
        let (t, k) = (&l.table, &l.key);
        quote!((#t, #k))
    });
    let write_names = args.writes.iter().map(|f| &f.name);
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
                        let config = state();
                        ::weir_sdk::rt::run_filter(batch, &*config, LOOKUPS, |e, c| #call)
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
                        let config = state();
                        ::weir_sdk::rt::run_enricher(batch, &*config, LOOKUPS, WRITES, |e, c, out| #call)
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

        #[doc = #doc]
        pub mod weir_plugin {
            #[allow(unused_imports)]
            use super::*;

            type __Config = #config_ty;

            const LOOKUPS: &[(&str, &str)] = &[#(#lookups),*];
            #[allow(dead_code)]
            const WRITES: &[&str] = &[#(#write_names),*];

            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<::std::rc::Rc<__Config>>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            fn state() -> ::std::rc::Rc<__Config> {
                STATE
                    .with(|s| s.borrow().clone())
                    .expect("the host calls init before any batch")
            }

            /// What the plugin is and which fields it reads and writes.
            pub fn describe() -> ::weir_sdk::Description {
                ::weir_sdk::Description {
                    name: #name,
                    version: #version,
                    reads: #reads,
                    writes: #writes,
                }
            }

            /// Parses the step's configuration; an error names the key.
            pub fn init(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                let parsed = ::weir_sdk::rt::init::<__Config>(config)?;
                STATE.with(|s| *s.borrow_mut() = ::std::option::Option::Some(::std::rc::Rc::new(parsed)));
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
