//! `SentenceSplitter` and `speakable`: text on its way to the TTS.

use pyo3::prelude::*;
use pyo3::types::PyList;
use voicecore_core::text::{self, Lang, SentenceSplitter, SplitterConfig};
use voicecore_core::CoreError;

use crate::errors::to_py;

/// A count argument as `usize`, or a `ConfigError` naming it.
fn count(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value).map_err(|_| {
        to_py(CoreError::InvalidArgument(format!(
            "{name} must be a non-negative number of characters, but got {value}"
        )))
    })
}

/// Streaming sentence splitter for LLM output.
#[pyclass(name = "SentenceSplitter", module = "voicecore._core")]
pub struct PySentenceSplitter {
    inner: SentenceSplitter,
}

#[pymethods]
impl PySentenceSplitter {
    #[new]
    #[pyo3(signature = (
        *,
        // Literals so the text signature shows them; equal to SplitterConfig's defaults.
        min_chars = 0,
        max_chars = 300,
        lang = None,
        first_clause_chars = None,
        eager_first_end = false,
    ))]
    fn new(
        min_chars: i64,
        max_chars: i64,
        lang: Option<&str>,
        first_clause_chars: Option<i64>,
        eager_first_end: bool,
    ) -> PyResult<Self> {
        let cfg = SplitterConfig {
            min_chars: count("min_chars", min_chars)?,
            max_chars: count("max_chars", max_chars)?,
            first_clause_chars: first_clause_chars
                .map(|n| count("first_clause_chars", n))
                .transpose()?,
            eager_first_end,
            lang: Lang::parse(lang).map_err(to_py)?,
        };
        let inner = SentenceSplitter::new(cfg).map_err(to_py)?;
        Ok(Self { inner })
    }

    /// Takes a token; returns the sentences it completed.
    fn push<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.push(text))
    }

    /// Ends the stream: returns the rest and resets.
    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.flush())
    }

    /// Forgets the stream.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// Text received and not yet returned.
    #[getter]
    fn pending(&self) -> &str {
        self.inner.pending()
    }

    #[getter]
    fn min_chars(&self) -> usize {
        self.inner.config().min_chars
    }

    #[getter]
    fn max_chars(&self) -> usize {
        self.inner.config().max_chars
    }

    #[getter]
    fn first_clause_chars(&self) -> Option<usize> {
        self.inner.config().first_clause_chars
    }

    #[getter]
    fn eager_first_end(&self) -> bool {
        self.inner.config().eager_first_end
    }

    #[getter]
    fn lang(&self) -> Option<&'static str> {
        self.inner.config().lang.code()
    }
}

/// The text a TTS should read: no markdown, code blocks or emoji; whitespace collapsed.
#[pyfunction]
pub fn speakable(text: &str) -> String {
    text::speakable(text)
}
