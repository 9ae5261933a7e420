//! Stateless G.711 functions: PCM16 bytes ⇄ μ-law / A-law bytes.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voicecore_core::g711::{self, Law};
use voicecore_core::pcm;

use crate::buffer::{self, Content};
use crate::errors::to_py;

fn encode<'py>(
    py: Python<'py>,
    pcm_in: &Bound<'py, PyAny>,
    law: Law,
) -> PyResult<Bound<'py, PyBytes>> {
    let view = buffer::view(pcm_in, Content::Pcm16)?;
    let input = view.as_slice();
    let n = pcm::sample_count(input).map_err(to_py)?;
    PyBytes::new_with(py, n, |out| {
        buffer::maybe_detach(py, input.len(), || {
            g711::encode_le_bytes_into(law, input, out)
        })
        .map_err(to_py)
    })
}

fn decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    law: Law,
) -> PyResult<Bound<'py, PyBytes>> {
    let view = buffer::view(data, Content::Bytes)?;
    let input = view.as_slice();
    PyBytes::new_with(py, input.len() * 2, |out| {
        buffer::maybe_detach(py, input.len(), || {
            g711::decode_le_bytes_into(law, input, out);
        });
        Ok(())
    })
}

/// PCM16 little-endian → μ-law, bit-exact with `audioop.lin2ulaw(pcm, 2)`.
#[pyfunction]
pub fn ulaw_encode<'py>(py: Python<'py>, pcm: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    encode(py, pcm, Law::Ulaw)
}

/// μ-law → PCM16 little-endian, bit-exact with `audioop.ulaw2lin(data, 2)`.
#[pyfunction]
pub fn ulaw_decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    decode(py, data, Law::Ulaw)
}

/// PCM16 little-endian → A-law, bit-exact with `audioop.lin2alaw(pcm, 2)`.
#[pyfunction]
pub fn alaw_encode<'py>(py: Python<'py>, pcm: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    encode(py, pcm, Law::Alaw)
}

/// A-law → PCM16 little-endian, bit-exact with `audioop.alaw2lin(data, 2)`.
#[pyfunction]
pub fn alaw_decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    decode(py, data, Law::Alaw)
}
