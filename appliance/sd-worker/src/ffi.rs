//! The one place that calls stable-diffusion.cpp: a loaded context, and images out of it.
//!
//! Every pointer handed to C lives in a `CString` or a local that outlives the call; every
//! pointer C hands back is copied into Rust memory and freed with the library's own function.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::null;
use std::sync::Mutex;

use diffusion_rs_sys as sys;

/// The last error stable-diffusion.cpp logged: its C API reports failure only as NULL.
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

unsafe extern "C" fn log(level: sys::sd_log_level_t, text: *const c_char, _data: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: the library passes a NUL-terminated buffer valid for this call.
    let line = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let line = line.trim_end();
    // stdout carries the protocol; the library's log goes to stderr, which the swapper logs.
    eprintln!("{line}");
    if level == sys::sd_log_level_t::SD_LOG_ERROR {
        *LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()) = Some(line.to_owned());
    }
}

/// Without a callback the library draws a progress bar on stdout, which would corrupt the
/// protocol; steps go to the log instead.
unsafe extern "C" fn progress(step: c_int, steps: c_int, seconds: f32, _data: *mut c_void) {
    eprintln!("step {step}/{steps} ({seconds:.2} s/step)");
}

fn take_error() -> Option<String> {
    LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The files of one model, as stable-diffusion.cpp takes them.
#[derive(Debug, Default)]
pub struct Files<'a> {
    /// A whole checkpoint (SD 1.x/2.x, SDXL) with its text encoder and VAE inside.
    pub model: Option<&'a Path>,
    /// A diffusion model alone (FLUX, SD3), whose encoders and VAE come as separate files.
    pub diffusion_model: Option<&'a Path>,
    pub vae: Option<&'a Path>,
    pub clip_l: Option<&'a Path>,
    pub clip_g: Option<&'a Path>,
    pub t5xxl: Option<&'a Path>,
}

fn c_path(path: Option<&Path>) -> Result<Option<CString>, String> {
    path.map(|p| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: a path with a NUL byte", p.display()))
    })
    .transpose()
}

fn ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(null(), |s| s.as_ptr())
}

/// One generated picture, 8-bit RGB rows.
#[derive(Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// What one request asks for; validated by the caller.
#[derive(Debug)]
pub struct Generation<'a> {
    pub prompt: &'a str,
    pub negative_prompt: &'a str,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub cfg_scale: f32,
    /// For models trained with a guidance input (FLUX dev); others ignore it.
    pub guidance: f32,
    pub seed: i64,
    pub count: u32,
}

/// A loaded model. Used from one thread: the library's context is not thread-safe.
pub struct Context {
    ctx: *mut sys::sd_ctx_t,
}

impl Context {
    pub fn load(files: &Files, threads: i32) -> Result<Context, String> {
        // SAFETY: both callbacks are `extern "C"` functions with the signatures the header
        // declares, and they touch no data through the (null) user pointer.
        unsafe {
            sys::sd_set_log_callback(Some(log), std::ptr::null_mut());
            sys::sd_set_progress_callback(Some(progress), std::ptr::null_mut());
        }
        let model = c_path(files.model)?;
        let diffusion_model = c_path(files.diffusion_model)?;
        let vae = c_path(files.vae)?;
        let clip_l = c_path(files.clip_l)?;
        let clip_g = c_path(files.clip_g)?;
        let t5xxl = c_path(files.t5xxl)?;
        // SAFETY: the struct is plain data; `sd_ctx_params_init` writes every field's default.
        let mut params: sys::sd_ctx_params_t = unsafe { std::mem::zeroed() };
        unsafe { sys::sd_ctx_params_init(&mut params) };
        params.model_path = ptr(&model);
        params.diffusion_model_path = ptr(&diffusion_model);
        params.vae_path = ptr(&vae);
        params.clip_l_path = ptr(&clip_l);
        params.clip_g_path = ptr(&clip_g);
        params.t5xxl_path = ptr(&t5xxl);
        params.n_threads = threads;
        // SAFETY: every path pointer is a live CString (or NULL) until this call returns; the
        // library copies what it keeps.
        let ctx = unsafe { sys::new_sd_ctx(&params) };
        if ctx.is_null() {
            return Err(take_error().map_or_else(
                || "stable-diffusion.cpp could not load the model".to_owned(),
                |e| format!("stable-diffusion.cpp could not load the model: {e}"),
            ));
        }
        Ok(Context { ctx })
    }

    pub fn generate(&mut self, request: &Generation) -> Result<Vec<Image>, String> {
        let prompt =
            CString::new(request.prompt).map_err(|_| "the prompt contains a NUL character")?;
        let negative = CString::new(request.negative_prompt)
            .map_err(|_| "the negative prompt contains a NUL character")?;
        // SAFETY: plain data, then every field set to the library's default.
        let mut params: sys::sd_img_gen_params_t = unsafe { std::mem::zeroed() };
        unsafe { sys::sd_img_gen_params_init(&mut params) };
        params.prompt = prompt.as_ptr();
        params.negative_prompt = negative.as_ptr();
        params.width = request.width as c_int;
        params.height = request.height as c_int;
        params.seed = request.seed;
        params.batch_count = request.count as c_int;
        params.sample_params.sample_steps = request.steps as c_int;
        params.sample_params.guidance.txt_cfg = request.cfg_scale;
        params.sample_params.guidance.distilled_guidance = request.guidance;
        take_error();
        // SAFETY: `self.ctx` is a live context; the prompts outlive the call.
        let images = unsafe { sys::generate_image(self.ctx, &params) };
        if images.is_null() {
            return Err(take_error().map_or_else(
                || "stable-diffusion.cpp produced no image".to_owned(),
                |e| format!("stable-diffusion.cpp produced no image: {e}"),
            ));
        }
        let count = request.count as usize;
        // SAFETY: on success the library returns an array of `batch_count` images.
        let slice = unsafe { std::slice::from_raw_parts(images, count) };
        let mut out = Vec::with_capacity(count);
        let mut failed = None;
        for image in slice {
            let len = image.width as usize * image.height as usize * image.channel as usize;
            if image.data.is_null() || image.channel != 3 || len == 0 {
                failed = Some(format!(
                    "stable-diffusion.cpp returned an unusable image ({}x{}, {} channels)",
                    image.width, image.height, image.channel
                ));
                break;
            }
            // SAFETY: `data` holds width × height × channel bytes.
            let rgb = unsafe { std::slice::from_raw_parts(image.data, len) }.to_vec();
            out.push(Image {
                width: image.width,
                height: image.height,
                rgb,
            });
        }
        // SAFETY: the array and its buffers came from `generate_image` and are freed once.
        unsafe { sys::free_sd_images(images, count as c_int) };
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by `new_sd_ctx`, freed only here.
        unsafe { sys::free_sd_ctx(self.ctx) };
    }
}
