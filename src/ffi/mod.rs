//! The only home of raw C-API calls: every `unsafe` block of the crate is in this module (the crate
//! root denies `unsafe_code` elsewhere), and each says why it is sound. The invariants they share
//! (the GIL is held, an [`Obj`] is live, raw pointers stay inside `ffi`) are stated once in
//! [`object`]. Everything outside works with [`Obj`] (an owned, non-null object reference) and the
//! safe wrappers here. docs/design.md gives the policy for struct-layout access and for functions
//! missing from PyO3's abi3 declarations ([`raw`]).
//!
//! By Python type, one concern per file (each `impl Obj` block sits with its type):
//!
//! | file | holds |
//! | --- | --- |
//! | `object.rs` | [`Obj`] and its generic operations (type, attributes, calls, items, iteration, `str`/`repr`); `gil`, `none`; the shared safety invariants |
//! | `errors.rs` | the pending exception as a `PyErr`, error-class checks, [`Text`] for error messages |
//! | `str.rs` | `str`: UTF-8 views, encodings, decoders, interning (the `interned!` names live in `crate::lookup`) |
//! | `bytes.rs` | `bytes`/`bytearray` content and constructors, [`NewBuffer`], `HeldBytes`, escape decoding |
//! | `buffer.rs` | the buffer protocol (`BufferView`, `Contiguous`) and memoryviews over Rust memory |
//! | `number.rs` | `int`/`bool`/`float` conversions, protocol 0 number parsing, LONG payloads |
//! | `int_layout.rs` | the digits of big ints read and written in place (layout access) |
//! | `containers.rs` | `list`, `tuple`, `dict`, `set`, `frozenset`: checks, live reads, constructors |
//! | `seq_layout.rs` | list and tuple item slots written in place (layout access) |
//! | `types.rs` | [`TypeRef`], the builtin types, type flags and subtype checks, the `tp_new` slot |
//! | `heap_type.rs` | the type reference each instance of our heap types holds (wrapped dealloc/traverse) |
//! | `members.rs` | member descriptors on fixed slots (`ObjectSlot`, `IntSlot`) and getset descriptors |
//! | `modules.rs` | `import` as `PyImport_Import` does it, `sys.modules` |
//! | `stack.rs` | the native stack guard and the interpreter's recursion limit |
//! | `shutdown.rs` | calls into Python that park a daemon thread unwound at interpreter exit |
//! | `fastcall.rs` | module functions with a cheap calling convention |
//! | `picklebuffer.rs` | `PickleBuffer` for 3.6/3.7 |
//! | `layout37.rs` | the frozen 3.6/3.7 layouts `picklebuffer.rs` and `types.rs` read |
//! | `bytes_layout.rs` | shortening a new `bytes` object in place (the pickler's result, layout rules) |
//! | `audit.rs` | `PySys_Audit`, found at import on 3.8+ |
//! | `vectorcall.rs` | `PyObject_Vectorcall`, found at import on 3.11+ |
//! | `raw.rs` | C-API functions missing from PyO3's abi3 declarations |
//! | `version.rs` | the running interpreter's version and whether layouts may be touched |
//!
//! The everyday vocabulary (`Obj`, `TypeRef`, the constructors, `import`, ...) is re-exported
//! here, so that call sites read `ffi::new_str(..)`; the rest is reached by module path
//! (`ffi::members::IntSlot`, `ffi::number::int_from_addr`, ...).

pub mod audit;
pub mod buffer;
pub mod bytes;
pub mod bytes_layout;
pub mod containers;
pub mod errors;
pub mod fastcall;
pub mod heap_type;
pub mod int_layout;
mod layout37;
pub mod members;
pub mod modules;
pub mod number;
pub mod object;
pub mod picklebuffer;
mod raw;
pub mod seq_layout;
mod shutdown;
pub mod stack;
pub mod str;
pub mod types;
pub mod vectorcall;
pub mod version;

pub use bytes::{bytes_decode_escape, new_bytearray, new_bytes, NewBuffer};
pub use containers::{
    new_dict, new_frozenset, new_list, new_list_owned, new_set, new_tuple, tuple,
};
pub use errors::{error_with_value, fetch_error, Text};
pub use modules::import;
pub use number::{bool_obj, int_from_text, new_float, new_int, new_uint, parse_float_prefix};
pub use object::{gil, none, Obj};
pub use raw::resolve as resolve_late_stable_api;
pub use stack::recursion_limit;
pub use str::{decode, intern_in_place, new_str, str_from_raw_unicode_escape, str_from_utf8};
pub use types::{call_type_new, type_has_new, TypeRef};
