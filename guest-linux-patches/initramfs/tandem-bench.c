// SPDX-License-Identifier: GPL-2.0-only
/*
 * tandem-bench: the macro benchmarks of `cargo xtask bench`, timed with the
 * virtual counter CNTVCT_EL0 (62.5 MHz on QEMU's cortex-a72: 16 ns, against
 * /proc/uptime's 10 ms), the same way on Tandem and natively.
 *
 *   tandem-bench
 *   tandem-bench: cpu_loop_ns=… getppid_ns=… pipe_ns=… stream_ns=…
 *
 * Each figure is the whole loop's time, in ns:
 *  - cpu_loop_ns: CPU_LOOP rounds of an integer hash, no memory or syscalls;
 *  - getppid_ns: GETPPID getppid() calls: syscall entry and exit;
 *  - pipe_ns: PIPE_ROUNDS round trips of one byte to a child and back over
 *    two pipes: two context switches and four syscalls each;
 *  - stream_ns: STREAM_PASSES passes writing then summing a STREAM_BYTES
 *    buffer (touched once first, so no page faults are timed).
 *
 * `cargo xtask bench` boots Linux with `tandem.bench` on its command line:
 * the profile then runs this tool right after the shell's first line, at
 * the same point of virtual time every run (a typed command would reach
 * Linux at a wall-clock-dependent one).
 *
 * Built like tandem-stats, against the kernel's nolibc.
 */

#ifndef NOLIBC
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#define CPU_LOOP 20000000UL
#define GETPPID 100000UL
#define PIPE_ROUNDS 10000UL
#define STREAM_BYTES (4UL << 20)
#define STREAM_PASSES 8UL

static unsigned long buffer[STREAM_BYTES / sizeof(unsigned long)];

static unsigned long long cntvct(void)
{
	unsigned long long v;

	asm volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

static unsigned long long cntfrq(void)
{
	unsigned long long v;

	asm volatile("mrs %0, cntfrq_el0" : "=r"(v));
	return v;
}

static unsigned long long ticks_to_ns(unsigned long long ticks)
{
	unsigned long long freq = cntfrq();

	return ticks / freq * 1000000000ULL + ticks % freq * 1000000000ULL / freq;
}

static void put_u64(unsigned long long v)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n)
		putchar(digits[--n]);
}

static void field(const char *name, unsigned long long ns)
{
	putchar(' ');
	fputs(name, stdout);
	putchar('=');
	put_u64(ns);
}

static unsigned long long cpu_loop(void)
{
	unsigned long long t = cntvct();
	unsigned long x = 1, i;

	for (i = 0; i < CPU_LOOP; i++) {
		x = x * 6364136223846793005UL + 1442695040888963407UL;
		x ^= x >> 29;
		asm volatile("" : "+r"(x));
	}
	return ticks_to_ns(cntvct() - t);
}

static unsigned long long getppid_loop(void)
{
	unsigned long long t = cntvct();
	unsigned long i;

	for (i = 0; i < GETPPID; i++)
		getppid();
	return ticks_to_ns(cntvct() - t);
}

/* PIPE_ROUNDS round trips; 0 if the pipes or the child failed. */
static unsigned long long pipe_loop(void)
{
	int to_child[2], to_parent[2], status;
	unsigned long long t;
	unsigned long i;
	char c = 'x';
	pid_t pid;

	if (pipe(to_child) || pipe(to_parent))
		return 0;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		/* Only the parent's write end stays open: its close ends the loop. */
		close(to_child[1]);
		close(to_parent[0]);
		while (read(to_child[0], &c, 1) == 1)
			if (write(to_parent[1], &c, 1) != 1)
				break;
		exit(0);
	}
	close(to_child[0]);
	close(to_parent[1]);
	t = cntvct();
	for (i = 0; i < PIPE_ROUNDS; i++)
		if (write(to_child[1], &c, 1) != 1 || read(to_parent[0], &c, 1) != 1)
			return 0;
	t = cntvct() - t;
	close(to_child[1]);
	waitpid(pid, &status, 0);
	return ticks_to_ns(t);
}

static unsigned long long stream(void)
{
	unsigned long n = STREAM_BYTES / sizeof(unsigned long), i, p, sum = 0;
	unsigned long long t;

	for (i = 0; i < n; i += 512)
		buffer[i] = i;
	t = cntvct();
	for (p = 0; p < STREAM_PASSES; p++) {
		for (i = 0; i < n; i++)
			buffer[i] = i + p;
		for (i = 0; i < n; i++)
			sum += buffer[i];
		asm volatile("" : "+r"(sum));
	}
	return ticks_to_ns(cntvct() - t);
}

int main(void)
{
	unsigned long long cpu, sys, rtt, mem;

	cpu = cpu_loop();
	sys = getppid_loop();
	rtt = pipe_loop();
	mem = stream();

	if (!rtt) {
		fputs("tandem-bench: pipe ping-pong failed\n", stderr);
		return 1;
	}
	fputs("tandem-bench:", stdout);
	field("cpu_loop_ns", cpu);
	field("getppid_ns", sys);
	field("pipe_ns", rtt);
	field("stream_ns", mem);
	putchar('\n');
	return 0;
}
