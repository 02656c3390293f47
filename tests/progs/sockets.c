/* sockets: reaches sockets the ways a record must show. In the directory
 * given: binds s.sock (a relative AF_UNIX name) and connects to it, tries
 * none.sock (missing), connects to 127.0.0.1:9 (refused: nothing listens on
 * discard), sends a datagram there by address, sends one on a connected
 * socket (no address: nothing new), then removes s.sock. */
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	USAGE(1, "DIR");
	CHECK(chdir(argv[1]) == 0);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	strcpy(un.sun_path, "s.sock");
	int server = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(server >= 0);
	CHECK(bind(server, (struct sockaddr *)&un, sizeof un) == 0);
	CHECK(listen(server, 1) == 0);
	int client = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(client, (struct sockaddr *)&un, sizeof un) == 0);
	strcpy(un.sun_path, "none.sock");
	int lost = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(lost, (struct sockaddr *)&un, sizeof un) < 0 && errno == ENOENT);

	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(9)};
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(tcp, (struct sockaddr *)&in, sizeof in) < 0);
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(sendto(udp, "x", 1, 0, (struct sockaddr *)&in, sizeof in) == 1);
	CHECK(connect(udp, (struct sockaddr *)&in, sizeof in) == 0);
	(void)!send(udp, "y", 1, 0);
	CHECK(unlink("s.sock") == 0);
	return 0;
}
