/*
 * A Kafka-protocol cluster on loopback for tests, from librdkafka's mock broker.
 *
 * Usage: mock-cluster [BROKERS]
 * Prints "bootstrap HOST:PORT,..." once ready, then reads commands from stdin, one per line,
 * answering "ok" or "error MESSAGE" to each:
 *   topic NAME PARTITIONS     create a topic
 *   down BROKER_ID            take a broker down (-1: all)
 *   up BROKER_ID              bring it back (-1: all)
 *   fail API_KEY ERROR COUNT  make the next COUNT requests of API_KEY fail with ERROR
 *   quit
 * It exits when stdin closes, so it never outlives the process that started it.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    printf("ok\n");
  else
    printf("error %s\n", rd_kafka_err2str(err));
  fflush(stdout);
}

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 1;
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "%s\n", errstr);
    return 1;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    fprintf(stderr, "cannot create the client handle: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (!cluster) {
    fprintf(stderr, "cannot create the mock cluster\n");
    return 1;
  }
  printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  fflush(stdout);

  char line[1024];
  while (fgets(line, sizeof(line), stdin)) {
    char name[512];
    int a, b, c;
    if (sscanf(line, "topic %511s %d", name, &a) == 2) {
      reply(rd_kafka_mock_topic_create(cluster, name, a, 1));
    } else if (sscanf(line, "down %d", &a) == 1) {
      reply(rd_kafka_mock_broker_set_down(cluster, a));
    } else if (sscanf(line, "up %d", &a) == 1) {
      reply(rd_kafka_mock_broker_set_up(cluster, a));
    } else if (sscanf(line, "fail %d %d %d", &a, &b, &c) == 3) {
      for (int i = 0; i < c; i++) rd_kafka_mock_push_request_errors(cluster, a, 1, (rd_kafka_resp_err_t)b);
      reply(RD_KAFKA_RESP_ERR_NO_ERROR);
    } else if (strncmp(line, "quit", 4) == 0) {
      break;
    } else {
      printf("error unknown command\n");
      fflush(stdout);
    }
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
