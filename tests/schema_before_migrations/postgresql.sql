-- The tables as `create_all` made them on postgresql before there were migrations
-- (release c581169): tests/test_schema.py upgrades such a database.

CREATE TABLE journey (
	reservation_id VARCHAR(128) NOT NULL,
	hotel_id VARCHAR(64) NOT NULL,
	stage VARCHAR(16) NOT NULL,
	arrival TIMESTAMP WITH TIME ZONE NOT NULL,
	departure TIMESTAMP WITH TIME ZONE NOT NULL,
	revision INTEGER NOT NULL,
	guest_email VARCHAR(320),
	guest_phone VARCHAR(32),
	view JSON NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (reservation_id)
);

CREATE INDEX ix_journey_arrival ON journey (arrival);

CREATE INDEX ix_journey_guest_email ON journey (guest_email);

CREATE INDEX ix_journey_guest_phone ON journey (guest_phone);

CREATE INDEX ix_journey_hotel_id ON journey (hotel_id);

CREATE INDEX ix_journey_stage ON journey (stage);

CREATE TABLE kpi_alert (
	id SERIAL NOT NULL,
	kpi VARCHAR(32) NOT NULL,
	hotel_id VARCHAR(64),
	window_kind VARCHAR(8) NOT NULL,
	window_start TIMESTAMP WITH TIME ZONE NOT NULL,
	window_end TIMESTAMP WITH TIME ZONE NOT NULL,
	kind VARCHAR(16) NOT NULL,
	value FLOAT NOT NULL,
	target FLOAT,
	message VARCHAR NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	notified_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id)
);

CREATE INDEX ix_kpi_alert_hotel_id ON kpi_alert (hotel_id);

CREATE INDEX ix_kpi_alert_window_end ON kpi_alert (window_end);

CREATE UNIQUE INDEX uq_kpi_alert ON kpi_alert (kpi, coalesce(hotel_id, ''), window_kind, window_end, kind);

CREATE TABLE kpi_snapshot (
	id SERIAL NOT NULL,
	hotel_id VARCHAR(64),
	window_kind VARCHAR(8) NOT NULL,
	window_start TIMESTAMP WITH TIME ZONE NOT NULL,
	window_end TIMESTAMP WITH TIME ZONE NOT NULL,
	satisfaction_avg FLOAT,
	feedback_responses INTEGER NOT NULL,
	nps FLOAT,
	upsell_offered INTEGER NOT NULL,
	upsell_accepted INTEGER NOT NULL,
	upsell_conversion FLOAT,
	avg_response_time_minutes FLOAT,
	messages_sent INTEGER NOT NULL,
	failure_rate FLOAT,
	checkin_adoption FLOAT,
	journeys INTEGER NOT NULL,
	computed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);

CREATE INDEX ix_kpi_snapshot_hotel_id ON kpi_snapshot (hotel_id);

CREATE INDEX ix_kpi_snapshot_window_end ON kpi_snapshot (window_end);

CREATE UNIQUE INDEX uq_kpi_snapshot_window ON kpi_snapshot (coalesce(hotel_id, ''), window_kind, window_start);

CREATE TABLE message (
	id VARCHAR(64) NOT NULL,
	idempotency_key VARCHAR(300),
	reservation_id VARCHAR(128),
	hotel_id VARCHAR(64),
	direction VARCHAR(16) NOT NULL,
	channel VARCHAR(16) NOT NULL,
	template VARCHAR(64),
	language VARCHAR(16),
	step_key VARCHAR(200),
	subject VARCHAR,
	body_text VARCHAR,
	body_html VARCHAR,
	status VARCHAR(16) NOT NULL,
	reason VARCHAR,
	attempts INTEGER NOT NULL,
	provider_message_id VARCHAR(300),
	in_reply_to VARCHAR(64),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	sent_at TIMESTAMP WITH TIME ZONE,
	status_at TIMESTAMP WITH TIME ZONE,
	delivered_at TIMESTAMP WITH TIME ZONE,
	read_at TIMESTAMP WITH TIME ZONE,
	recipient VARCHAR(320),
	sender VARCHAR(320),
	matched_by VARCHAR(16),
	PRIMARY KEY (id),
	UNIQUE (idempotency_key)
);

CREATE INDEX ix_message_created_at ON message (created_at);

CREATE INDEX ix_message_hotel_summary ON message (hotel_id, direction, created_at, channel, status);

CREATE INDEX ix_message_in_reply_to ON message (in_reply_to);

CREATE INDEX ix_message_provider_message_id ON message (provider_message_id);

CREATE INDEX ix_message_recipient ON message (recipient);

CREATE INDEX ix_message_replied_to ON message (id, direction, created_at);

CREATE INDEX ix_message_replies ON message (created_at, hotel_id, direction, in_reply_to) WHERE in_reply_to IS NOT NULL;

CREATE INDEX ix_message_reservation_id ON message (reservation_id);

CREATE INDEX ix_message_summary ON message (direction, created_at, hotel_id, channel, status);

CREATE TABLE snapshot_pending (
	reservation_id VARCHAR(128) NOT NULL,
	request_id VARCHAR(64) NOT NULL,
	seen_revision INTEGER NOT NULL,
	sent_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (reservation_id, request_id)
);

CREATE TABLE unsubscribe (
	address VARCHAR(320) NOT NULL,
	reservation_id VARCHAR(128),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (address)
);

CREATE TABLE message_status_event (
	id SERIAL NOT NULL,
	message_id VARCHAR(64) NOT NULL,
	status VARCHAR(16) NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	reason VARCHAR,
	event_id VARCHAR(300),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_message_status_event_report UNIQUE (message_id, status, at),
	FOREIGN KEY(message_id) REFERENCES message (id),
	UNIQUE (event_id)
);

CREATE INDEX ix_message_status_event_message_id ON message_status_event (message_id);
