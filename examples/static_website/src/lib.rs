//! A static website: `kv_ro -> http -> job`. Every `GET` or `HEAD` names a file of the store
//! (`htdocs/`, crunched into the image or read from the host); a path naming a directory
//! serves its `index.html`. Responses carry a content type chosen by the file's extension.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use mirage_devices::kv_ro::normalize;
use mirage_devices::{ConduitError, HttpServer, Kind, KvError, KvRo, Request, Response};

/// `Error` is why the website stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server could not listen.
    Http(ConduitError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => write!(f, "cannot serve HTTP: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// `content_type(key)` is the media type of a file named `key`, by its extension.
pub fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `percent_decode(path)` is `path` with `%XX` escapes decoded, or `None` if an escape is
/// malformed or the result is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = core::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `error(status)` is a short plain-text error response.
fn error(status: u16, text: &str) -> Response {
    Response::text(status, text)
}

/// `respond(kv, request)` is the file of `kv` that `request` names.
pub async fn respond<K: KvRo>(kv: &K, request: &Request) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        let mut r = error(405, "method not allowed\n");
        r.headers
            .push((String::from("Allow"), String::from("GET, HEAD")));
        return r;
    }
    let Some(path) = percent_decode(&request.path) else {
        return error(400, "malformed path\n");
    };
    let trimmed = path.trim_end_matches('/');
    let Ok(key) = normalize(trimmed) else {
        return error(404, "not found\n");
    };
    let key = match kv.exists(key).await {
        Ok(Some(Kind::Value)) => String::from(key),
        Ok(Some(Kind::Dictionary)) if key.is_empty() => String::from("index.html"),
        Ok(Some(Kind::Dictionary)) => alloc::format!("{key}/index.html"),
        Ok(None) | Err(KvError::NotFound | KvError::InvalidKey | KvError::Forbidden) => {
            return error(404, "not found\n")
        }
        // A FIFO, a socket or a device in a passthrough folder: never opened.
        Err(KvError::NotRegular) => return error(403, "forbidden\n"),
        Err(e) => {
            log::error!("looking up {key}: {e}");
            return error(500, "internal server error\n");
        }
    };
    match kv.get(&key).await {
        Ok(body) => Response::new(200, content_type(&key), body),
        Err(KvError::NotFound | KvError::IsDictionary) => error(404, "not found\n"),
        Err(e) => {
            log::error!("reading {key}: {e}");
            error(500, "internal server error\n")
        }
    }
}

/// `start(kv, http, port)` serves the files of `kv` over `http` on `port`.
pub async fn start<K, H>(kv: K, http: H, port: u16) -> Result<(), Error>
where
    K: KvRo + 'static,
    H: HttpServer,
{
    let handler = move |request: Request| {
        let kv = kv.clone();
        async move { respond(&kv, &request).await }
    };
    http.serve(port, handler).await.map_err(Error::Http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_decoding() {
        assert_eq!(content_type("a/b.PNG"), "image/png");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }
}
