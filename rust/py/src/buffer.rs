//! Bytes-like input without copying: `bytes` directly, anything else through the buffer protocol.
//!
//! This is the only module that touches raw memory; outputs are written straight into
//! new `bytes` objects by the callers (`PyBytes::new_with`).

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use voicecore_core::pcm;

use crate::errors;

/// Inputs at least this large are processed with the GIL released (per-frame calls are far below it).
pub const DETACH_THRESHOLD_BYTES: usize = 64 * 1024;

/// A read-only view of a bytes-like object's memory, valid while the view lives.
pub enum ByteView<'a> {
    Bytes(&'a [u8]),
    Buffer(PyUntypedBuffer),
}

impl ByteView<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Bytes(bytes) => bytes,
            Self::Buffer(buffer) if buffer.len_bytes() == 0 => &[],
            #[allow(unsafe_code)]
            // SAFETY: the buffer is C-contiguous (checked in `view`) and stays exported while
            // `self` holds it, so `len_bytes` bytes from `buf_ptr` are valid for this borrow.
            Self::Buffer(buffer) => unsafe {
                std::slice::from_raw_parts(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes())
            },
        }
    }
}

/// What the bytes of an input mean, which decides the buffer formats it accepts.
#[derive(Clone, Copy)]
pub enum Content {
    /// Raw bytes (G.711 codes): any 1-byte format.
    Bytes,
    /// Little-endian PCM16: 1-byte formats, or native/little-endian int16 arrays.
    Pcm16,
}

fn format_ok(format: &str, item_size: usize, content: Content) -> bool {
    let byte_like = item_size == 1 && matches!(format, "B" | "b" | "c" | "<B" | "=B" | "@B");
    let int16 = item_size == 2 && matches!(format, "h" | "<h" | "=h" | "@h");
    match content {
        Content::Bytes => byte_like,
        Content::Pcm16 => byte_like || (int16 && cfg!(target_endian = "little")),
    }
}

/// Borrows the memory of `obj` (bytes, bytearray, memoryview, array, numpy array).
pub fn view<'a>(obj: &'a Bound<'_, PyAny>, content: Content) -> PyResult<ByteView<'a>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(ByteView::Bytes(bytes.as_bytes()));
    }
    let buffer = PyUntypedBuffer::get(obj).map_err(|_| {
        let type_name = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "expected a bytes-like object (bytes, bytearray, memoryview or a C-contiguous int16 array), got {type_name}"
        ))
    })?;
    if !buffer.is_c_contiguous() {
        return Err(errors::audio_format(
            "audio buffers must be C-contiguous; pass a contiguous copy (e.g. numpy.ascontiguousarray)".to_owned(),
        ));
    }
    let format = buffer.format().to_str().unwrap_or("?");
    if !format_ok(format, buffer.item_size(), content) {
        let expected = match content {
            Content::Bytes => "1-byte items",
            Content::Pcm16 => "1-byte items or little-endian int16 samples",
        };
        return Err(errors::audio_format(format!(
            "buffer holds items of format {format:?} ({} bytes each); expected {expected}",
            buffer.item_size()
        )));
    }
    Ok(ByteView::Buffer(buffer))
}

/// Runs `work` with the GIL released when the input is large enough for that to pay off.
pub fn maybe_detach<T: Send>(
    py: Python<'_>,
    input_len: usize,
    work: impl FnOnce() -> T + Send,
) -> T {
    if input_len >= DETACH_THRESHOLD_BYTES {
        py.detach(work)
    } else {
        work()
    }
}

/// Reads the samples of a PCM16 bytes-like object into `scratch` (its memory reused per call).
pub fn read_pcm(pcm_obj: &Bound<'_, PyAny>, scratch: &mut Vec<i16>) -> PyResult<()> {
    let view = view(pcm_obj, Content::Pcm16)?;
    let bytes = view.as_slice();
    pcm::sample_count(bytes).map_err(errors::to_py)?;
    scratch.clear();
    scratch.extend(pcm::samples(bytes));
    Ok(())
}
