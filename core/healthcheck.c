#include "healthcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"

int healthcheck_run(void)
{
    const char *p = getenv("PORT");
    int port = atoi(p != NULL && *p != '\0' ? p : config_default("PORT"));
    if (port < 1 || port > 65535) {
        fprintf(stderr, "healthcheck: PORT must be an integer from 1 to 65535\n");
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("healthcheck: connect");
        close(fd);
        return 1;
    }
    static const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    char buf[64] = {0};
    ssize_t n = -1;
    if (write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1)
        n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n >= 12 && (strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0))
        return 0;
    fprintf(stderr, "healthcheck: /healthz did not answer 200\n");
    return 1;
}
