// SPDX-License-Identifier: GPL-2.0-only
/*
 * machine-uptime: seconds since the machine was powered on, on the clock
 * that Tandem and a native boot share: the Arm generic counter, which QEMU
 * starts at 0 at power-on (under -icount it counts virtual time).
 *
 *   machine-uptime        e.g. "0.061234"
 *   machine-uptime -v     e.g. "0.061234 (generic counter + Tandem's VM offset)"
 *
 * Linux's own clocks (/proc/uptime, printk times) start only when Linux
 * initialises its timekeeping, so they miss everything before: the firmware
 * or hypervisor, VM creation, Linux's early boot. This tool does not. It
 * reads the virtual counter CNTVCT_EL0 first thing, the same way everywhere,
 * then converts it to time since power-on:
 *  - with no hypervisor the virtual counter is the physical one;
 *  - on Tandem the guest's virtual counter starts at VM creation, so the tool
 *    adds the offset it measures by reading Tandem's uptime
 *    (/sys/hypervisor/stats/uptime_ns, the physical counter) between two
 *    more counter reads.
 *
 * Built like tandem-stats, against the kernel's nolibc.
 */

#ifndef NOLIBC
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#endif

#define NSEC_PER_SEC 1000000000ULL

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

/* Reads a one-line file into buf (NUL-terminated, newline dropped); 0 on success.
 * With `before` and `after`, the counter just before and after the read(). */
static int read_line(const char *path, char *buf, int size,
		     unsigned long long *before, unsigned long long *after)
{
	int fd, n;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	if (before)
		*before = cntvct();
	n = read(fd, buf, size - 1);
	if (after)
		*after = cntvct();
	close(fd);
	if (n <= 0)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return 0;
}

static unsigned long long ticks_to_ns(unsigned long long ticks,
				      unsigned long long freq)
{
	return ticks / freq * NSEC_PER_SEC + ticks % freq * NSEC_PER_SEC / freq;
}

/*
 * On Tandem: sets *offset_ns to Tandem's uptime minus the guest's counter
 * time, measured around one read of uptime_ns; returns 0. Elsewhere: -1.
 */
static int tandem_offset(unsigned long long freq, long long *offset_ns)
{
	char buf[32];
	unsigned long long up = 0, before, after;
	int i;

	if (read_line("/sys/hypervisor/type", buf, sizeof(buf), 0, 0) ||
	    strcmp(buf, "tandem"))
		return -1;
	if (read_line("/sys/hypervisor/stats/uptime_ns", buf, sizeof(buf),
		      &before, &after))
		return -1;
	for (i = 0; buf[i] >= '0' && buf[i] <= '9'; i++)
		up = up * 10 + (buf[i] - '0');
	if (buf[i] || !i)
		return -1;
	*offset_ns = (long long)(up - ticks_to_ns(before + (after - before) / 2, freq));
	return 0;
}

/* Prints v in decimal, at least width digits (zero-padded). */
static void put_u64(unsigned long long v, int width)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n < width)
		digits[n++] = '0';
	while (n)
		putchar(digits[--n]);
}

int main(int argc, char **argv)
{
	/* The measurement point: first, and identical with or without Tandem. */
	unsigned long long ticks = cntvct(), freq = cntfrq(), ns;
	const char *source = "generic counter";
	int verbose = argc == 2 && !strcmp(argv[1], "-v");
	long long offset;

	if (argc > 2 || (argc == 2 && !verbose)) {
		fputs("usage: machine-uptime [-v]\n", stderr);
		return 2;
	}
	if (!freq)
		return 1;
	ns = ticks_to_ns(ticks, freq);
	if (!tandem_offset(freq, &offset)) {
		ns += offset;
		source = "generic counter + Tandem's VM offset";
	}
	put_u64(ns / NSEC_PER_SEC, 1);
	putchar('.');
	put_u64(ns % NSEC_PER_SEC / 1000, 6);
	if (verbose) {
		fputs(" (", stdout);
		fputs(source, stdout);
		putchar(')');
	}
	putchar('\n');
	return 0;
}
