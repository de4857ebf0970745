CLUSTER t USING t_pkey;
