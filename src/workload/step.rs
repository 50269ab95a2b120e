//! What a training step runs besides the layers: the cross-entropy's HBM traffic per logit,
//! unfused gradient accumulation, Megatron-LM's (2021) optimizer step and the kernels of its local
//! DDP around the data-parallel all-reduce.

use crate::ops::Kernel;

const ACT: u64 = 2; // bytes per 16-bit activation or weight element

/// HBM bytes per logit of the vocabulary-parallel cross-entropy forward, as Megatron-LM runs it
/// (2021 `mpu/cross_entropy.py` on `output.float()`; Megatron-Core 2024 likewise unless its fusion
/// is switched on), one eager kernel per step over the b s x V/t logits: the upcast to fp32 (read 2,
/// write 4), the max (read 4), subtracting it in place (8), exp in place (8), the sum (4), and the
/// softmax kept for backward, divided in place (8): 38.
pub const CROSS_ENTROPY_FORWARD_BYTES: u64 = 38;
/// Its backward: the saved softmax minus the one-hot target, scaled by the loss gradient in place
/// (read 4, write 4), then the upcast's backward to 16 bits (read 4, write 2): 14.
pub const CROSS_ENTROPY_BACKWARD_BYTES: u64 = 14;

/// Adding one microbatch's weight gradients for `params` parameters into the gradient buffer
/// (unfused gradient accumulation): read the new 16-bit gradient, read and write the buffer
/// element of `grad_bytes` bytes.
pub fn grad_accumulation_kernel(params: u64, grad_bytes: u64) -> Kernel {
    Kernel::Stream {
        bytes: params * (ACT + 2 * grad_bytes),
    }
}

/// Megatron-LM's (2021) fp16 optimizer step with Adam over `params` parameters, in three phases
/// separated by the two model-parallel scalar all-reduces it issues (found-inf, then the gradient
/// norm), as the streaming kernels it runs (bytes per parameter, read + written):
/// 1. copy the model gradients to fp32 main gradients (read `grad_bytes`, write 4; nothing when the
///    gradients already sit in an fp32 buffer, which the main gradients alias), then unscale and
///    check for inf/nan (read 4, write 4);
/// 2. the gradient norm for clipping (read 4);
/// 3. fused Adam (read grad, param, momentum, variance: 16; write param, momentum, variance: 12),
///    copy the fp32 main params to the fp16 model params (read 4, write 2), and, with a contiguous
///    buffer, zero it for the next iteration (write `grad_bytes`; without one the gradients are
///    set to None, no kernel).
///
/// Without a buffer (SC'21's runs): 6 + 8, 4, 28 + 6 = 52 bytes per parameter.
pub fn optimizer_phases(params: u64, grad_bytes: u64, grad_buffer: bool) -> [Vec<Kernel>; 3] {
    let stream = |bytes: &[u64]| -> Vec<Kernel> {
        bytes
            .iter()
            .filter(|&&b| b > 0)
            .map(|b| Kernel::Stream { bytes: b * params })
            .collect()
    };
    let to_main = if grad_buffer && grad_bytes == 4 {
        0
    } else {
        grad_bytes + 4
    };
    let zero = if grad_buffer { grad_bytes } else { 0 };
    [stream(&[to_main, 8]), stream(&[4]), stream(&[28, ACT + 4, zero])]
}

/// The kernels Megatron-LM's (2021) local DDP runs around the data-parallel all-reduce of `params`
/// gradients of `grad_bytes` each: (before, after). Without a buffer: flatten into one tensor (read
/// and write) and divide by the data-parallel size (read and write) before, copy back into the
/// gradients (read and write) after; with a buffer only the divide. They run whatever the
/// data-parallel size, even 1.
pub fn data_parallel_kernels(params: u64, grad_bytes: u64, grad_buffer: bool) -> (Vec<Kernel>, Vec<Kernel>) {
    let pass = Kernel::Stream {
        bytes: 2 * grad_bytes * params,
    };
    if grad_buffer {
        (vec![pass], Vec::new())
    } else {
        (vec![pass, pass], vec![pass])
    }
}
