"""OneID (统一身份 / ID-Mapping): the identity engine."""
