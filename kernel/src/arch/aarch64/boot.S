// EL2 entry: the arm64 Image header, early CPU setup and per-CPU stacks.
//
// Boot protocol (Linux arm64 booting.rst): x0 = physical address of the DTB,
// MMU off, caches off, interrupts masked. Secondaries enter at
// secondary_entry through PSCI CPU_ON with x0 = their logical CPU index.

.section .text.boot, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .word   0                       // code1
    .quad   0x80000                 // text_offset
    .quad   __image_size            // image_size (xtask grows it over the guest package)
    .quad   0xa                     // flags: little endian, 4 KiB pages, anywhere
    .quad   0, 0, 0                 // res2..res4
    .word   0x644d5241              // magic "ARM\x64"
    .word   0                       // res5

primary_entry:
    mov     x19, x0                 // DTB
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.eq    1f
    cmp     x1, #3
    b.eq    drop_from_el3
    // Not at EL2: zero BSS, take CPU 0's stack and report from Rust.
    bl      zero_bss
    mov     x0, #0
    bl      stack_for_cpu
    mov     sp, x0
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    bl      rust_wrong_el
    b       park

drop_from_el3:
    // Firmware started us at EL3 (raspi4b ELF boot): enter EL2h, AArch64, interrupts masked.
    msr     cptr_el3, xzr
    mov     x1, #0x5b1              // NS | RES1 | SMD | HCE | RW
    msr     scr_el3, x1
    mov     x1, #0x3c9              // EL2h, DAIF masked
    msr     spsr_el3, x1
    adr     x1, primary_entry
    msr     elr_el3, x1
    mov     x0, x19
    eret

1:  bl      el2_early_setup
    bl      zero_bss
    mov     x0, #0
    bl      set_stacks
    mov     x0, x19
    mov     x1, #0
    bl      rust_primary_main
    b       park

.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // logical CPU index (PSCI context_id)
    bl      el2_early_setup
    mov     x0, x19
    bl      set_stacks
    mov     x0, x19
    bl      rust_secondary_main
    b       park

// Spin-table starts (Raspberry Pi firmware, QEMU raspi4b): the firmware's spin
// code jumps to the released address with x0 = 0, so each logical CPU index has
// its own entry that supplies it. spin_entries[n - 1] starts CPU index n.
.macro spin_entry n
spin_entry_\n:
    mov     x0, #\n
    b       secondary_entry
.endm
    spin_entry 1
    spin_entry 2
    spin_entry 3
    spin_entry 4
    spin_entry 5
    spin_entry 6
    spin_entry 7
.balign 8
.global spin_entries
spin_entries:
    .quad   spin_entry_1, spin_entry_2, spin_entry_3, spin_entry_4
    .quad   spin_entry_5, spin_entry_6, spin_entry_7

// Known values for the EL2 registers that are UNKNOWN at reset.
el2_early_setup:
    msr     spsel, #1
    ldr     x0, =0x30c50830         // SCTLR_EL2 RES1 bits; MMU, caches, alignment checks off
    msr     sctlr_el2, x0
    mov     x0, #0x33ff             // CPTR_EL2: RES1 bits, TZ (trap SVE), FP/SIMD not trapped
    msr     cptr_el2, x0
    mov     x0, #(1 << 31)          // HCR_EL2: EL1 is AArch64; nothing trapped yet
    msr     hcr_el2, x0
    adr     x0, el2_vectors
    msr     vbar_el2, x0
    isb
    ret

zero_bss:
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
2:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       2b
3:  ret

// x0 = CPU index -> x0 = top of its main stack, x1 = top of its emergency stack.
// Per CPU: [guard][emergency][guard][stack], __cpu_stack_stride bytes.
stack_for_cpu:
    adrp    x2, __stacks_start
    add     x2, x2, :lo12:__stacks_start
    ldr     x3, =__cpu_stack_stride
    madd    x2, x0, x3, x2          // this CPU's block
    add     x0, x2, x3              // main stack top = end of block
    ldr     x4, =__emergency_stack_size
    add     x1, x2, #4096
    add     x1, x1, x4              // emergency top = block + guard + emergency size
    ret

// x0 = CPU index: SP_EL2 = main stack, SP_EL0 = emergency stack for EL2 faults.
set_stacks:
    mov     x5, x30
    bl      stack_for_cpu
    mov     sp, x0
    msr     sp_el0, x1
    mov     x30, x5
    ret

.global park
park:
    wfe
    b       park
