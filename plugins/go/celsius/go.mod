module celsius

go 1.25
