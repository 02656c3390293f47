/* entry.S: the runtime's assembly (x86_64).
 *
 * bs_gate_template .. bs_gate_template_end: long f(long nr, long a1..a6),
 * position independent. Copied into the gate page (BS_IP_GATE_ADDR) at
 * init; the copy in this .text is itself the way to make a call outside
 * the gate (bs_raw_syscall), which the tracer sees.
 *
 * bs_entry: what every patch stub calls, with the syscall number in eax,
 * the arguments in the syscall registers, the red zone already skipped.
 * Saves the six argument registers (the only caller-saved registers the
 * interrupted code may still rely on, besides rax, rcx and r11, which the
 * syscall instruction clobbers), calls bs_handle(nr, args), restores them
 * and returns the result in rax.
 */
	.text
	.globl bs_gate_template
	.hidden bs_gate_template
	.globl bs_gate_template_end
	.hidden bs_gate_template_end
	.globl bs_raw_syscall
	.hidden bs_raw_syscall
	.type bs_gate_template, @function
	.type bs_raw_syscall, @function
	.p2align 4
bs_gate_template:
bs_raw_syscall:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	mov 8(%rsp), %r9
	syscall
	ret
bs_gate_template_end:
	.size bs_gate_template, . - bs_gate_template
	.size bs_raw_syscall, . - bs_raw_syscall

	.globl bs_entry
	.hidden bs_entry
	.type bs_entry, @function
	.p2align 4
bs_entry:
	push %rbp
	mov %rsp, %rbp
	sub $48, %rsp
	and $-16, %rsp
	mov %rdi, 0(%rsp)
	mov %rsi, 8(%rsp)
	mov %rdx, 16(%rsp)
	mov %r10, 24(%rsp)
	mov %r8, 32(%rsp)
	mov %r9, 40(%rsp)
	mov %eax, %edi
	mov %rsp, %rsi
	call bs_handle
	mov 0(%rsp), %rdi
	mov 8(%rsp), %rsi
	mov 16(%rsp), %rdx
	mov 24(%rsp), %r10
	mov 32(%rsp), %r8
	mov 40(%rsp), %r9
	mov %rbp, %rsp
	pop %rbp
	ret
	.size bs_entry, . - bs_entry

	.section .note.GNU-stack, "", @progbits
