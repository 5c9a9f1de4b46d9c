// The world switch: enter a guest and come back on its next exception.
//
// u64 guest_enter(GuestRegs *regs): saves Tandem's callee-saved registers on
// SP_EL2 together with `regs` and this CPU's emergency stack pointer (SP_EL0
// belongs to the guest while it runs), loads the guest's x0-x30, SP_EL0, PC
// and PSTATE, and erets. The lower-EL vectors push the guest's x0/x1 and jump
// to guest_exit with the vector index, which saves everything back into
// `regs` and returns the index (0 sync, 1 IRQ, 2 FIQ, 3 SError).
// EL1 system registers and FP/SIMD are not touched here: EL2 never uses them,
// so they are switched only when a physical CPU changes vCPU.
// Layout of GuestRegs: x0..x30 at 0..240, sp_el0 248, pc 256, pstate 264.

.equ HOST_FRAME, 112                // regs, emergency SP_EL0, x19..x30

.section .text.guest, "ax"
.global guest_enter
guest_enter:
    sub     sp, sp, #HOST_FRAME
    mrs     x1, sp_el0
    stp     x0, x1, [sp, #0]
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     x29, x30, [sp, #96]
    ldp     x1, x2, [x0, #256]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldr     x1, [x0, #248]
    msr     sp_el0, x1
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret

.global guest_exit
guest_exit:
    // Stack: guest x0/x1 (16 bytes), then the host frame.
    ldr     x1, [sp, #16]
    stp     x2, x3, [x1, #16]
    stp     x4, x5, [x1, #32]
    stp     x6, x7, [x1, #48]
    stp     x8, x9, [x1, #64]
    stp     x10, x11, [x1, #80]
    stp     x12, x13, [x1, #96]
    stp     x14, x15, [x1, #112]
    stp     x16, x17, [x1, #128]
    stp     x18, x19, [x1, #144]
    stp     x20, x21, [x1, #160]
    stp     x22, x23, [x1, #176]
    stp     x24, x25, [x1, #192]
    stp     x26, x27, [x1, #208]
    stp     x28, x29, [x1, #224]
    str     x30, [x1, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #0]
    mrs     x2, sp_el0
    str     x2, [x1, #248]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x1, #256]
    ldr     x2, [sp, #8]
    msr     sp_el0, x2
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp, #96]
    add     sp, sp, #HOST_FRAME
    ret

// u64 take_pending_serror(void): after a guest exit, while its vCPU is still
// current. Waits for the guest's outstanding memory accesses (DSB SY), then,
// if a physical SError is pending (ISR_EL1.A), unmasks SErrors at EL2 for
// the window below: the SError vector sees ELR_EL2 in it, sets x0 = 1 and
// returns. Returns 1 if an SError was taken, else 0. (No ESB: DSB and
// ISR_EL1 work with and without FEAT_RAS.)
.global take_pending_serror
take_pending_serror:
    mov     x0, #0
    dsb     sy
    isb
    mrs     x1, isr_el1
    tbz     x1, #8, 1f
.global serror_window
serror_window:
    msr     daifclr, #4
    isb
    nop
.global serror_window_end
serror_window_end:
    msr     daifset, #4
1:  ret

// FP/SIMD save and restore (EL2 code is softfloat; only these touch the registers).
.arch_extension fp
.arch_extension simd

// void fp_save(FpRegs *)
.global fp_save
fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpcr
    mrs     x2, fpsr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret

// void fp_restore(const FpRegs *)
.global fp_restore
fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpcr, x1
    msr     fpsr, x2
    ret
