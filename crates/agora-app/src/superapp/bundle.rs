//! A mini-app bundle: a zip with `manifest.json` at its root and the files it serves.
//!
//! The zip is read whole, within limits, before anything is stored: a bad path, an unknown file
//! type, a file larger than declared or a bundle over the limits refuses the upload and names
//! the culprit.

use std::io::{Cursor, Read, Write};

use agora_domain::miniapp::{self, Entry, MANIFEST_FILE, Manifest};
use agora_domain::{Error, Result};
use agora_store::MiniAppFile;
use sha2::{Digest, Sha256};

/// A checked bundle: its manifest, its files (without the manifest) and the zip's SHA-256.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub files: Vec<MiniAppFile>,
    pub sha256: String,
}

impl Bundle {
    pub fn from_zip(zip: &[u8], bytes_max: u64, files_max: u32) -> Result<Self> {
        if zip.len() as u64 > bytes_max {
            return Err(Error::LimitExceeded {
                limit: "superapp.bundle_bytes_max".to_owned(),
                message: format!(
                    "the bundle is {} bytes; at most {bytes_max} (superapp.bundle_bytes_max)",
                    zip.len()
                ),
            });
        }
        let mut archive = zip::ZipArchive::new(Cursor::new(zip))
            .map_err(|e| Error::invalid("bundle", format!("is not a zip file ({e})")))?;
        if archive.len() > files_max as usize {
            return Err(Error::LimitExceeded {
                limit: "superapp.bundle_files_max".to_owned(),
                message: format!(
                    "the bundle holds {} entries; at most {files_max} (superapp.bundle_files_max)",
                    archive.len()
                ),
            });
        }
        let mut manifest = None;
        let mut files = Vec::new();
        let mut total: u64 = 0;
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(|e| {
                Error::invalid("bundle", format!("entry {index} cannot be read ({e})"))
            })?;
            if entry.is_dir() {
                continue;
            }
            let path = entry.name().to_owned();
            miniapp::check_bundle_path("bundle", &path)?;
            let declared = entry.size();
            total = total.saturating_add(declared);
            if total > bytes_max * 4 {
                return Err(Error::LimitExceeded {
                    limit: "superapp.bundle_bytes_max".to_owned(),
                    message: format!(
                        "the bundle unpacks to more than {} bytes (four times superapp.bundle_bytes_max)",
                        bytes_max * 4
                    ),
                });
            }
            let mut body = Vec::with_capacity(declared.min(bytes_max) as usize);
            // Reads at most one byte past what the entry declares, so a lying header is caught.
            (&mut entry)
                .take(declared + 1)
                .read_to_end(&mut body)
                .map_err(|e| {
                    Error::invalid("bundle", format!("`{path}` cannot be unpacked ({e})"))
                })?;
            if body.len() as u64 != declared {
                return Err(Error::invalid(
                    "bundle",
                    format!("`{path}` is not the size its zip entry declares"),
                ));
            }
            if path == MANIFEST_FILE {
                manifest = Some(Manifest::parse(&body)?);
                continue;
            }
            let content_type = miniapp::content_type(&path).ok_or_else(|| {
                Error::invalid(
                    "bundle",
                    format!("`{path}` has a file type Agora does not serve (html, js, css, json, images, fonts, txt, wasm)"),
                )
            })?;
            if path == miniapp::SDK_PATH {
                return Err(Error::invalid(
                    "bundle",
                    format!("`{path}` is reserved: Agora serves its SDK there"),
                ));
            }
            files.push(MiniAppFile {
                path,
                content_type: content_type.to_owned(),
                body,
            });
        }
        let manifest = manifest.ok_or_else(|| {
            Error::invalid("bundle", format!("has no `{MANIFEST_FILE}` at its root"))
        })?;
        let has = |path: &str| files.iter().any(|file| file.path == path);
        match &manifest.entry {
            Entry::Bundle(entry) if !has(entry) => {
                return Err(Error::invalid(
                    "entry",
                    format!("`{entry}` is not a file of the bundle"),
                ));
            }
            _ => {}
        }
        if let Some(icon) = &manifest.icon
            && !has(icon)
        {
            return Err(Error::invalid(
                "icon",
                format!("`{icon}` is not a file of the bundle"),
            ));
        }
        Ok(Self {
            manifest,
            files,
            sha256: hex::encode(Sha256::digest(zip)),
        })
    }
}

/// Zips files (stored, not compressed): how the demo and tests make bundles.
pub fn zip_files(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (path, body) in files {
        writer
            .start_file(*path, options)
            .and_then(|()| writer.write_all(body).map_err(Into::into))
            .map_err(|e| Error::Internal(format!("zipping {path}: {e}")))?;
    }
    writer
        .finish()
        .map(Cursor::into_inner)
        .map_err(|e| Error::Internal(format!("zipping: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &[u8] = br#"{"slug":"shop","name":"Shop","category":"food","entry":"index.html","icon":"icon.svg"}"#;

    #[test]
    fn a_bundle_keeps_its_files_and_not_its_manifest() {
        let zip = zip_files(&[
            ("manifest.json", MANIFEST),
            ("index.html", b"<!doctype html>"),
            ("icon.svg", b"<svg/>"),
            ("js/app.js", b"1"),
        ])
        .unwrap();
        let bundle = Bundle::from_zip(&zip, 1 << 20, 10).unwrap();
        assert_eq!(bundle.manifest.slug, "shop");
        let paths: Vec<&str> = bundle.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["index.html", "icon.svg", "js/app.js"]);
        assert_eq!(bundle.sha256.len(), 64);
    }

    #[test]
    fn bad_bundles_are_refused_naming_the_culprit() {
        let refused = |files: &[(&str, &[u8])]| {
            Bundle::from_zip(&zip_files(files).unwrap(), 1 << 20, 10)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(&[("index.html", b"x")]).contains("manifest.json"));
        assert!(refused(&[("manifest.json", MANIFEST), ("icon.svg", b"x")]).contains("index.html"));
        assert!(
            refused(&[
                ("manifest.json", MANIFEST),
                ("index.html", b"x"),
                ("icon.svg", b"x"),
                ("../x.js", b"x")
            ])
            .contains("../x.js")
        );
        assert!(
            refused(&[
                ("manifest.json", MANIFEST),
                ("index.html", b"x"),
                ("icon.svg", b"x"),
                ("run.exe", b"x")
            ])
            .contains("run.exe")
        );
        assert!(
            refused(&[
                ("manifest.json", MANIFEST),
                ("index.html", b"x"),
                ("icon.svg", b"x"),
                ("agora-sdk.js", b"x")
            ])
            .contains("reserved")
        );
        assert!(
            Bundle::from_zip(b"not a zip", 1 << 20, 10)
                .unwrap_err()
                .to_string()
                .contains("zip")
        );
        let big = zip_files(&[("manifest.json", MANIFEST)]).unwrap();
        assert!(matches!(
            Bundle::from_zip(&big, 10, 10),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
