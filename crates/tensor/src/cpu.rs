//! What this CPU offers loopgrad's kernels, detected at run time: `loopgrad bench` prints it next to its
//! timings, so that a figure always says which kernels produced it.

/// The kernels a run's products use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    /// The f32 GEMM: loopgrad's AVX-512 or AVX2 kernel, or matrixmultiply (the f32 fallback).
    pub f32_gemm: &'static str,
    /// The bf16 GEMM: AMX-BF16 tiles, the AVX512_BF16 kernel, or bf16-rounded operands through the f32 GEMM.
    pub bf16_gemm: &'static str,
    /// AMX-BF16 tiles: whether the CPU reports them, and whether the bf16 GEMM uses them.
    pub amx: &'static str,
    /// The width of the element-wise f32 kernels built on exp (SwiGLU, softmax): 16 lanes on AVX-512F
    /// (`simd::avx512`), else the compiled vector's 8.
    pub elementwise: &'static str,
}

/// The kernels of this CPU (see [`Kernels`]).
pub fn kernels() -> Kernels {
    Kernels {
        f32_gemm: crate::gemm::own_f32_kernel().unwrap_or("f32 fallback (matrixmultiply)"),
        bf16_gemm: if crate::gemm::amx_kernel_available() {
            "AMX-BF16 tiles (tdpbf16ps)"
        } else if crate::gemm::bf16_kernel_available() {
            "AVX512_BF16 (vdpbf16ps)"
        } else {
            "f32 fallback (operands rounded to bf16)"
        },
        amx: match (amx_bf16(), crate::gemm::amx_kernel_available()) {
            (true, true) => "AMX-BF16, used by the bf16 GEMM",
            (true, false) => "AMX-BF16 present, not used (LOOPGRAD_AMX=0, or the OS did not grant the tiles)",
            _ => "no AMX",
        },
        elementwise: elementwise_width(),
    }
}

fn elementwise_width() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512::available() {
        return "AVX-512F, 16 f32 lanes";
    }
    if cfg!(target_arch = "x86_64") {
        "AVX2, 8 f32 lanes (LOOPGRAD_SIMD16=0, or no AVX-512F)"
    } else {
        "8 f32 lanes (wide's f32x8)"
    }
}

/// Whether CPUID reports AMX-BF16 and AMX-TILE (leaf 7, EDX bits 22 and 24). std's `is_x86_feature_detected`
/// cannot ask for AMX on stable Rust, hence CPUID directly. (Using the tiles also needs the OS to grant them,
/// which [`crate::gemm::amx_kernel_available`] asks for.)
pub fn amx_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        if __cpuid(0).eax < 7 {
            return false;
        }
        let edx = __cpuid_count(7, 0).edx;
        edx & (1 << 22) != 0 && edx & (1 << 24) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}
