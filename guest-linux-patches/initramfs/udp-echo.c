// SPDX-License-Identifier: GPL-2.0-only
/*
 * udp-echo: the modem's UDP echo service (169.254.77.1, port 7) as a
 * measurement of the virtio data path between Linux and the RTOS.
 *
 *   udp-echo [COUNT [SIZE]]   default 100 datagrams of 1024 bytes
 *
 * Sends COUNT datagrams of SIZE bytes one at a time, waits for each echo
 * (1 s at most) and checks it byte for byte, then prints one line:
 *
 *   udp-echo: 100/100 echoed, 1024 bytes each, 204800 bytes in 9876 us:
 *   165.9 Mbit/s, rtt min/avg/max 80/98/130 us
 *
 * (bytes counted both ways). Times come from the generic counter, which
 * counts virtual time under QEMU -icount. Exit status 0 when every datagram
 * came back intact. Built like tandem-stats, against the kernel's nolibc,
 * which has no socket calls: they are made with raw system calls.
 */

#ifndef NOLIBC
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#endif
#include <asm/unistd.h>

#define AF_INET 2
#define SOCK_DGRAM 2
#define SOL_SOCKET 1
#define SO_RCVTIMEO 20
#define MAX_SIZE 1472

struct in_addr4 {
	unsigned short family;
	unsigned short port;	/* network order */
	unsigned int addr;	/* network order */
	unsigned char zero[8];
};

struct timeval64 {
	long sec;
	long usec;
};

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

static unsigned short be16(unsigned short v)
{
	return (unsigned short)((v >> 8) | (v << 8));
}

static unsigned char out[MAX_SIZE], in[MAX_SIZE];

int main(int argc, char **argv)
{
	struct in_addr4 modem = { AF_INET, 0, 0, { 0 } };
	struct timeval64 timeout = { 1, 0 };
	unsigned long long hz = cntfrq(), start, rtt, min = ~0ULL, max = 0, sum = 0;
	long count = argc > 1 ? atol(argv[1]) : 100;
	long size = argc > 2 ? atol(argv[2]) : 1024;
	long i, echoed = 0, j;
	int fd;

	if (count < 1 || size < 1 || size > MAX_SIZE) {
		printf("usage: udp-echo [COUNT [SIZE]]   (COUNT >= 1, SIZE 1..%d)\n", MAX_SIZE);
		return 2;
	}
	modem.port = be16(7);
	modem.addr = 0x014dfea9; /* 169.254.77.1: bytes a9 fe 4d 01 */
	fd = my_syscall3(__NR_socket, AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		printf("udp-echo: socket: error %d\n", -fd);
		return 1;
	}
	my_syscall5(__NR_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	start = cntvct();
	for (i = 0; i < count; i++) {
		unsigned long long t0 = cntvct();
		long n;

		for (j = 0; j < size; j++)
			out[j] = (unsigned char)(i + j);
		n = my_syscall6(__NR_sendto, fd, out, size, 0, &modem, sizeof(modem));
		if (n != size) {
			printf("udp-echo: sendto: %ld\n", n);
			break;
		}
		n = my_syscall6(__NR_recvfrom, fd, in, sizeof(in), 0, 0, 0);
		if (n != size || memcmp(in, out, size) != 0) {
			printf("udp-echo: datagram %ld: %s\n", i,
			       n < 0 ? "no echo within 1 s" : "echo differs");
			continue;
		}
		rtt = cntvct() - t0;
		echoed++;
		sum += rtt;
		min = rtt < min ? rtt : min;
		max = rtt > max ? rtt : max;
	}
	{
		unsigned long long us = (cntvct() - start) * 1000000ULL / hz;
		unsigned long long bytes = 2ULL * (unsigned long long)size * echoed;
		unsigned long long kbit = us ? bytes * 8ULL * 1000ULL / us : 0;

		printf("udp-echo: %ld/%ld echoed, %ld bytes each, %llu bytes in %llu us: %llu.%llu Mbit/s, rtt min/avg/max %llu/%llu/%llu us\n",
		       echoed, count, size, bytes, us, kbit / 1000, (kbit % 1000) / 100,
		       echoed ? min * 1000000ULL / hz : 0,
		       echoed ? sum * 1000000ULL / hz / echoed : 0,
		       echoed ? max * 1000000ULL / hz : 0);
	}
	return echoed == count ? 0 : 1;
}
