// EL2 exception vectors (Arm ARM D1.10.2: 16 entries of 0x80 bytes).
//
// Exceptions taken at EL2 itself are faults: the stub switches to SP_EL0,
// which holds this CPU's emergency stack, so even a stack overflow into a
// guard page can be reported. It saves a TrapFrame (kernel::fault) and calls
// rust_el2_fault, which prints the report and parks the CPU.

.equ FRAME_SIZE, 288                // 31 GPRs, SP, ELR, SPSR, ESR, FAR

.macro FAULT_ENTRY kind
    .balign 0x80
    msr     spsel, #0
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       el2_fault_common
.endm

.macro GUEST_EXIT kind
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x0, #\kind
    b       guest_exit
.endm

// An SError at EL2: taken on purpose in take_pending_serror's window (guest.S),
// it is the guest's: x0 = 1, back to the window. Anywhere else it is a fault.
.macro SERROR_ENTRY
    .balign 0x80
    stp     x1, x2, [sp, #-16]!
    mrs     x1, elr_el2
    adrp    x2, serror_window
    add     x2, x2, :lo12:serror_window
    cmp     x1, x2
    b.lo    1f
    adrp    x2, serror_window_end
    add     x2, x2, :lo12:serror_window_end
    cmp     x1, x2
    b.hi    1f
    ldp     x1, x2, [sp], #16
    mov     x0, #1
    eret
1:  ldp     x1, x2, [sp], #16
    msr     spsel, #0
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #3
    b       el2_fault_common
.endm

// A fault while already on the emergency stack: nothing safe is left to do.
.macro NESTED_ENTRY
    .balign 0x80
    b       park
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    // Current EL with SP_EL0: only the fault path runs on SP_EL0.
    NESTED_ENTRY
    NESTED_ENTRY
    NESTED_ENTRY
    NESTED_ENTRY
    // Current EL with SP_EL2.
    FAULT_ENTRY 0
    FAULT_ENTRY 1
    FAULT_ENTRY 2
    SERROR_ENTRY
    // Lower EL, AArch64: guest exits (guest.S).
    GUEST_EXIT 0
    GUEST_EXIT 1
    GUEST_EXIT 2
    GUEST_EXIT 3
    // Lower EL, AArch32 (never enabled: HCR_EL2.RW is set).
    FAULT_ENTRY 8
    FAULT_ENTRY 9
    FAULT_ENTRY 10
    FAULT_ENTRY 11

el2_fault_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    // x30 and the interrupted SP_EL2 (read by switching SPSel back for a moment).
    msr     spsel, #1
    mov     x1, sp
    msr     spsel, #0
    stp     x30, x1, [sp, #240]
    mrs     x1, elr_el2
    mrs     x2, spsr_el2
    stp     x1, x2, [sp, #256]
    mrs     x1, esr_el2
    mrs     x2, far_el2
    stp     x1, x2, [sp, #272]
    mov     x1, sp
    bl      rust_el2_fault
    b       park
