-- payments 010 (issue 12): who sees which payment and invoice is who sees
-- their order, the same rule as orders' (services/orders/request.c,
-- orders_viewer): the order's placer and enterprise (read model "orders")
-- and, from orders.order.created's items, each certificate's holder account
-- and enterprise. Orders created before this table existed have no rows
-- here: their placer and enterprise still decide.
CREATE TABLE order_certs (
	order_id          uuid NOT NULL,
	cert_id           uuid NOT NULL,
	holder_account_id uuid,
	uscc              text,
	PRIMARY KEY (order_id, cert_id)
);
CREATE INDEX order_certs_holder ON order_certs (holder_account_id);
CREATE INDEX order_certs_uscc ON order_certs (uscc);
CREATE INDEX orders_uscc ON orders (uscc) WHERE uscc IS NOT NULL;
CREATE INDEX orders_account ON orders (account_id);
