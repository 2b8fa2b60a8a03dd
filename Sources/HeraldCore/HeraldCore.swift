// Herald core: configuration, integrations and delivery.
